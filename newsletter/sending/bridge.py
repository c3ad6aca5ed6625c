"""Running synchronous code on an event loop: each call in a greenlet of the loop's thread, which hands the loop
whatever it has to wait for (`wait_for`) and goes on when that is done.

anymail's backends are synchronous: `message.send()` builds the provider's payload, posts it, reads the answer.
Sending many at once from threads costs a worker more CPU in thread switches and contention for the interpreter
lock than in the sending itself. With `run`, each send is a greenlet on one loop instead: the send code is
anymail's own, unchanged, and only the wait for the provider's answer is the loop's (`wait_for` in
newsletter.sending.session). Switching between greenlets costs about a microsecond and no system call.
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import greenlet


class Bridged(greenlet.greenlet):
    """A greenlet run by `run`: code inside it may `wait_for` an awaitable."""


async def run(function: Callable[..., Any], *args: Any) -> Any:
    """Call `function(*args)` in a new greenlet, awaiting on this loop whatever it waits for; its result or error."""
    call = Bridged(function)
    handed = call.switch(*args)
    while not call.dead:
        try:
            value = await handed
        except BaseException as exc:  # noqa: BLE001 - the awaited error is raised inside the greenlet, where it belongs
            handed = call.throw(exc)
        else:
            handed = call.switch(value)
    return handed


def inside() -> bool:
    """Whether this code runs in a greenlet started by `run` (so it may `wait_for`)."""
    return isinstance(greenlet.getcurrent(), Bridged)


def wait_for(awaitable: Awaitable) -> Any:
    """From inside `run`: let the loop await this, and return its result (or raise its error) here."""
    current = greenlet.getcurrent()
    if not isinstance(current, Bridged):
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # never to be awaited: closed now, not warned about when collected
        raise RuntimeError("wait_for is only for code run by newsletter.sending.bridge.run")
    return current.parent.switch(awaitable)
