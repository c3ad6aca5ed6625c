"""A lighter way through requests for anymail's provider backends: the same adapter, connection pool, TLS,
proxies and errors, without the per-request work a send does not need.

anymail posts each message with `requests.Session.request`. Of the ~0.9 ms of CPU that costs a worker per
message on this machine, most is not the HTTP: it merges the session's settings and cookies into each request,
re-parses the same URL, and, with `trust_env` (the default), reads the proxy and netrc settings out of the whole
process environment again for every request. At 1,000 messages/s that is most of a core.

`DirectSession.request` prepares a plain request (a method, a URL, a body, headers and a timeout: what every
anymail requests backend sends) itself: the URL normalised once per URL, the environment's proxy and TLS
settings read once per URL, then the session's own adapter sends it and builds the `requests.Response` anymail
reads, raising the same requests exceptions. Anything else (files, auth, query parameters, cookies, hooks such
as anymail's request dump, or a body that is not text or bytes) goes through `requests.Session.request`
unchanged. What the lighter path leaves out: following redirects (a provider's send API answers, it does not
redirect: a 3xx reaches anymail as the error it is) and cookies the provider sets (APIs authenticate with
headers).

`LoopSession` is the same for sends run on an event loop (newsletter.sending.bridge): its plain requests are
made by the loop's aiohttp client, and their answers handed to anymail as the `requests.Response` it reads, with
requests' own exceptions for a refused connection or a timeout; everything else (the full path, a proxy, a client
certificate) is sent by requests as above, in a thread of the loop's executor.
"""

import asyncio
import io
import os
import ssl
from functools import cache, partial

import aiohttp
import requests
import requests.certs
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy

from newsletter.sending import bridge

# The keyword arguments the lighter path sends itself; any other argument with a value takes the full path.
DIRECT_ARGUMENTS = frozenset({"data", "headers", "timeout"})


class DirectSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[str, str] = {}  # as given → as requests normalises it
        self.environment: dict[str, dict] = {}  # URL → proxies, verify, cert and stream from the environment

    @classmethod
    def like(cls, session: requests.Session) -> "DirectSession":
        """A DirectSession with the given session's headers, hooks, auth, proxies and TLS settings."""
        direct = cls()
        direct.headers = CaseInsensitiveDict(session.headers)
        direct.hooks = {event: list(hooks) for event, hooks in session.hooks.items()}
        direct.auth, direct.params, direct.proxies = session.auth, session.params, dict(session.proxies)
        direct.verify, direct.cert, direct.trust_env = session.verify, session.cert, session.trust_env
        return direct

    @classmethod
    def taking_over(cls, backend: object, **attributes: object) -> None:
        """Give an opened anymail requests backend a session of this class in place of its plain one."""
        session = getattr(backend, "session", None)
        if isinstance(session, requests.Session) and not isinstance(session, cls):
            backend.session = cls.like(session)
            vars(backend.session).update(attributes)
            session.close()

    def direct(self, kwargs: dict) -> bool:
        """Whether this request is one the lighter path sends as requests would."""
        if any(value for name, value in kwargs.items() if name not in DIRECT_ARGUMENTS):
            return False
        if self.auth or self.params or any(self.hooks.values()):
            return False
        return isinstance(kwargs.get("data"), str | bytes)

    def request(self, method: str, url: str, *args, **kwargs) -> requests.Response:
        if args or not self.direct(kwargs):
            return super().request(method, url, *args, **kwargs)
        prepared = self.prepared(method, url, kwargs)
        return self.get_adapter(prepared.url).send(prepared, timeout=kwargs.get("timeout"), **self.settings(url))

    def prepared(self, method: str, url: str, kwargs: dict) -> requests.PreparedRequest:
        """A plain request as requests' session would prepare it."""
        data = kwargs["data"]
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.url = self.normalised(url)
        headers = {**self.headers, **(kwargs.get("headers") or {})}
        prepared.prepare_headers({name: value for name, value in headers.items() if value is not None})
        prepared.prepare_body(data.encode() if isinstance(data, str) else data, None)
        prepared.prepare_hooks(None)
        return prepared

    def normalised(self, url: str) -> str:
        if url not in self.urls:
            prepared = requests.PreparedRequest()
            prepared.prepare_url(url, None)
            self.urls[url] = prepared.url
        return self.urls[url]

    def settings(self, url: str) -> dict:
        """Proxies and TLS settings for this URL: the session's, and the environment's when it trusts it, read
        once (as `requests.Session.request` reads them for every request)."""
        if url not in self.environment:
            self.environment[url] = self.merge_environment_settings(url, {}, None, None, None)
        return self.environment[url]


class LoopSession(DirectSession):
    """A DirectSession for code run by newsletter.sending.bridge: plain requests go out through `client`, an
    aiohttp session on the bridge's loop, while the calling greenlet waits; anything else through requests in
    a thread of the loop's executor (the loop must never block on a socket). Outside the bridge it is a
    DirectSession."""

    client: aiohttp.ClientSession | None = None

    @staticmethod
    def client_for(concurrency: int) -> aiohttp.ClientSession:
        """An HTTP client for LoopSessions (made on their loop): a keep-alive connection per request in flight,
        and no cookies kept, as DirectSession keeps none (a provider's API authenticates with headers)."""
        connector = aiohttp.TCPConnector(limit=concurrency)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    def request(self, method: str, url: str, *args, **kwargs) -> requests.Response:
        if not bridge.inside() or self.client is None:
            return super().request(method, url, *args, **kwargs)
        if args or not self.direct(kwargs) or self.needs_requests(url):
            return bridge.wait_for(asyncio.to_thread(partial(super().request, method, url, *args, **kwargs)))
        return bridge.wait_for(self.fetch(self.prepared(method, url, kwargs), kwargs.get("timeout")))

    def needs_requests(self, url: str) -> bool:
        """A proxy or a client certificate for this URL: requests' own adapter handles those."""
        settings = self.settings(url)
        return select_proxy(url, settings["proxies"]) is not None or settings["cert"] is not None

    async def fetch(self, prepared: requests.PreparedRequest, timeout: object) -> requests.Response:
        """Send it with the loop's client; the answer as requests would give it, or requests' error."""
        try:
            async with self.client.request(
                prepared.method,
                prepared.url,
                data=prepared.body,
                headers=dict(prepared.headers),
                timeout=client_timeout(timeout),
                ssl=self.verifying(prepared.url),
                allow_redirects=False,
            ) as answer:
                content = await answer.read()
        except aiohttp.ConnectionTimeoutError as exc:
            raise requests.ConnectTimeout(exc, request=prepared) from exc
        except TimeoutError as exc:  # aiohttp's read timeout is one too
            raise requests.ReadTimeout(exc, request=prepared) from exc
        except aiohttp.ClientSSLError as exc:  # a certificate not verified, a handshake refused
            raise requests.exceptions.SSLError(exc, request=prepared) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise requests.ConnectionError(exc, request=prepared) from exc
        response = requests.Response()
        response.status_code, response.reason, response.url = answer.status, answer.reason, prepared.url
        response.headers = CaseInsensitiveDict()
        for name, value in answer.headers.items():  # repeated fields joined, as requests does
            response.headers[name] = f"{response.headers[name]}, {value}" if name in response.headers else value
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw, response.request = io.BytesIO(content), prepared
        return response

    def verifying(self, url: str) -> ssl.SSLContext | bool:
        """The TLS check requests would make for this URL: against its CA bundle (certifi's, or
        REQUESTS_CA_BUNDLE and the like from the environment), or none where `verify` is off."""
        if not url.startswith("https:"):
            return True  # no TLS, nothing to verify: aiohttp's default
        verify = self.settings(url)["verify"]
        return False if verify is False else tls_context(requests.certs.where() if verify is True else verify)


@cache
def tls_context(where: str) -> ssl.SSLContext:
    """A context verifying against this CA bundle (a file) or directory of certificates. Made once per process:
    loading certifi's bundle takes ~10 ms of CPU, and each chunk's session would load it again."""
    if os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where)


def client_timeout(timeout: object) -> aiohttp.ClientTimeout:
    """requests' timeout (seconds to connect and between reads, or a pair of them, or None) in aiohttp's terms."""
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
