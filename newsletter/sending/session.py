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
"""

import requests
from requests.structures import CaseInsensitiveDict

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
    def taking_over(cls, backend: object) -> None:
        """Give an opened anymail requests backend a DirectSession in place of its plain one."""
        session = getattr(backend, "session", None)
        if isinstance(session, requests.Session) and not isinstance(session, cls):
            backend.session = cls.like(session)
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
        data = kwargs["data"]
        body = data.encode() if isinstance(data, str) else data
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.url = self.normalised(url)
        headers = {**self.headers, **(kwargs.get("headers") or {})}
        prepared.prepare_headers({name: value for name, value in headers.items() if value is not None})
        prepared.prepare_body(body, None)
        prepared.prepare_hooks(None)
        return self.get_adapter(prepared.url).send(prepared, timeout=kwargs.get("timeout"), **self.settings(url))

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
