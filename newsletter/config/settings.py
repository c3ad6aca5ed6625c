"""One settings module for every environment; everything that differs comes from the environment.

With no environment at all the service runs embedded: SQLite under var/, Celery tasks in-process,
mail written as .eml files into var/outbox/. README.md, "Configuration", lists every variable.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from newsletter.config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-set-SECRET_KEY-in-production"  # noqa: S105 - dev only, DEBUG on

SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
_site = urlsplit(SITE_URL)
SITE_IS_HTTPS = _site.scheme == "https"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [_site.hostname or "127.0.0.1", "127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

# Transport security follows SITE_URL's scheme: https in production passes `check --deploy`,
# plain http on localhost keeps forms and the admin login working.
SESSION_COOKIE_SECURE = SITE_IS_HTTPS
CSRF_COOKIE_SECURE = SITE_IS_HTTPS
SECURE_SSL_REDIRECT = SITE_IS_HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
SECURE_HSTS_SECONDS = 31_536_000 if SITE_IS_HTTPS else 0  # one year, the preload list's minimum
SECURE_HSTS_INCLUDE_SUBDOMAINS = SITE_IS_HTTPS
SECURE_HSTS_PRELOAD = SITE_IS_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", True) else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "axes",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "anymail",
    "newsletter",
    "papers",
    "subscribers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "newsletter.config.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: it answers for a locked-out sign-in
]

ROOT_URLCONF = "newsletter.urls"
WSGI_APPLICATION = "newsletter.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "newsletter.config.context_processors.site",
            ],
        },
    },
    # The emails' template sets, templates/emails/<name>/{subject.txt, body.txt, body.html}: Jinja2, with the
    # stylesheet a template asks for inlined when it is loaded. One environment for every email
    # (newsletter.emails.templates.environment); anyone renders a set with django.template.loader, using="emails".
    {
        "NAME": "emails",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "newsletter.emails.templates.environment"},
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # WAL lets the web process read while a command writes.
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = "PRAGMA journal_mode=WAL;"
    DATABASES["default"]["OPTIONS"]["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Celery -------------------------------------------------------------------------------------
# With no REDIS_URL every task runs in-process, so the embedded setup needs no broker.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task killed mid-run is redelivered; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # one chunk at a time per process: fair share across workers
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every queue declared: a bare `celery -A newsletter worker` serves them all, `--queues send` restricts.
CELERY_TASK_QUEUES = [Queue("default"), Queue("send"), Queue("fetch")]
# Fetching and sending live on separate queues so a slow feed never delays mail.
CELERY_TASK_ROUTES = {
    "papers.tasks.*": {"queue": "fetch"},
    "newsletter.tasks.send_*": {"queue": "send"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# The DatabaseScheduler copies these into the database, where the admin can edit them.
CELERY_BEAT_SCHEDULE = {
    # The day's digest once the fetches (one entry per source, added in the Delivery block) are in.
    "build-digest": {"task": "newsletter.tasks.build_digest_task", "schedule": crontab(hour=6, minute=0)},
    # Every quarter hour, so readers in +05:30 or +05:45 zones get theirs at the top of their own hour.
    "deliver-due": {"task": "newsletter.tasks.deliver_due_task", "schedule": crontab(minute="*/15")},
    "purge-old-deliveries": {"task": "newsletter.tasks.purge_ledger_task", "schedule": crontab(hour=3, minute=17)},
}

# --- Mail ---------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "newsletter.mail.OutboxBackend")
OUTBOX_DIR = Path(env_str("OUTBOX_DIR", str(VAR_DIR / "outbox")))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
# Every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"] (provider keys, webhook secret).
ANYMAIL = {key.removeprefix("ANYMAIL_"): value for key, value in os.environ.items() if key.startswith("ANYMAIL_")}
# A provider's API waits EMAIL_TIMEOUT too (anymail's own default is 30 s), unless ANYMAIL_REQUESTS_TIMEOUT says.
ANYMAIL["REQUESTS_TIMEOUT"] = env_float("ANYMAIL_REQUESTS_TIMEOUT", EMAIL_TIMEOUT)
DIGEST_FROM_EMAIL = env_str("DIGEST_FROM_EMAIL", "Daily Papers <digest@localhost>")
DEFAULT_FROM_EMAIL = DIGEST_FROM_EMAIL
# DKIM for the mail we hand to an SMTP server ourselves (newsletter/emails/signing.py); a provider's API signs
# with its own keys. The key as PEM text (newlines may be written \n) or a file; the selector names its DNS
# record, <selector>._domainkey.<domain>; the domain defaults to the From address's, which DMARC aligns with.
DKIM_PRIVATE_KEY = env_str("DKIM_PRIVATE_KEY").replace("\\n", "\n")
DKIM_PRIVATE_KEY_PATH = env_str("DKIM_PRIVATE_KEY_PATH")
DKIM_SELECTOR = env_str("DKIM_SELECTOR")
DKIM_DOMAIN = env_str("DKIM_DOMAIN") or DIGEST_FROM_EMAIL.rpartition("@")[2].strip(" >")
if (DKIM_PRIVATE_KEY or DKIM_PRIVATE_KEY_PATH) and not DKIM_SELECTOR:
    raise ImproperlyConfigured("DKIM_PRIVATE_KEY(_PATH) is set without DKIM_SELECTOR: the signature would name no key")
SERVER_EMAIL = DIGEST_FROM_EMAIL
# The sender's postal address, for the footer: CAN-SPAM asks one of commercial mail to US readers.
# `manage.py check_sending` warns while it is unset.
DIGEST_POSTAL_ADDRESS = env_str("DIGEST_POSTAL_ADDRESS")
DIGEST_LIST_ID = env_str("DIGEST_LIST_ID", f"Daily Papers <daily-papers.{_site.hostname or 'localhost'}>")

# --- The product --------------------------------------------------------------------------------
DIGEST_TRENDING_COUNT = env_int("DIGEST_TRENDING_COUNT", 5)
DIGEST_FOR_YOU_COUNT = env_int("DIGEST_FOR_YOU_COUNT", 10)
# Which sources `run_daily` and the scheduled fetch read; see papers/sources/.
PAPER_SOURCES = env_list("PAPER_SOURCES", ["hf", "arxiv:cs.LG+cs.CL+cs.CV+cs.AI"])
FETCH_USER_AGENT = env_str("FETCH_USER_AGENT", f"daily-papers-digest/1.0 (+{SITE_URL}; mailto:{DIGEST_FROM_EMAIL})")
FETCH_TIMEOUT_SECONDS = env_float("FETCH_TIMEOUT_SECONDS", 20.0)
MODERATION_MODE = env_str("MODERATION_MODE", "auto")  # "auto" or "review"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # In-process tasks would log a line per task into the command's output.
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
    },
}

# --- Ingestion ----------------------------------------------------------------------------------
# Attempts after the first on 429 / 5xx / timeouts, with exponential backoff and jitter (papers/fetch.py).
FETCH_RETRIES = env_int("FETCH_RETRIES", 3)
# Minimum seconds between two requests to a host, shared by every worker: arXiv asks for one every 3 s.
FETCH_MIN_INTERVALS = {"arxiv.org": env_float("ARXIV_MIN_INTERVAL_SECONDS", 3.0)}
# How many results an `arxiv-api:<query>` search asks for (look-ups by id ask for exactly their ids).
ARXIV_API_MAX_RESULTS = env_int("ARXIV_API_MAX_RESULTS", 100)
# The schedule `sync_fetch_schedules` gives each source in PAPER_SOURCES that has none yet (crontab fields:
# minute hour day-of-month month day-of-week, UTC). arXiv's listings are rebuilt by about 04:00 UTC.
FETCH_SCHEDULE = env_str("FETCH_SCHEDULE", "30 4 * * *")
# pylatexenc logs every LaTeX slip in an abstract; ingest keeps the source text of a span it cannot read.
LOGGING["loggers"]["pylatexenc"] = {"level": "ERROR"}
# --- Admin --------------------------------------------------------------------------------------
# In review mode a digest goes out only once an editor approves it; this is the UTC hour by which they must.
REVIEW_DEADLINE_HOUR = env_int("REVIEW_DEADLINE_HOUR", 7)
# What happens to a digest nobody approved by the deadline: "skip" the day, or send "trending_only".
REVIEW_MISSED_POLICY = env_str("REVIEW_MISSED_POLICY", "skip")
# Admin sign-in throttling (django-axes): failures count per user name AND client address together, so a
# stranger's wrong passwords never block the right one from another address, and a burst of failures from one
# address (an office behind one NAT) never blocks the other staff there. The address is the one the trusted
# proxies saw (RATELIMIT_TRUSTED_PROXIES, the same reading as the sign-up limits). Attempts are kept in the
# database, so every web process shares them, in-process too; superusers see and clear them under "Axes".
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "subscribers.ratelimit.client_ip"
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_MAX_FAILURES", 5)
AXES_COOLOFF_TIME = timedelta(seconds=env_int("ADMIN_LOGIN_COOLOFF_SECONDS", 900))
AXES_RESET_ON_SUCCESS = True  # the right password forgets that pair's earlier slips
AXES_DISABLE_ACCESS_LOG = True  # failures are what throttling needs; every successful sign-in would grow a table
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # lock-outs and repeated failures; not a line per start-up
if REVIEW_MISSED_POLICY not in ("skip", "trending_only"):
    raise ImproperlyConfigured(f"REVIEW_MISSED_POLICY={REVIEW_MISSED_POLICY!r}: use skip or trending_only")
# --- Delivery -----------------------------------------------------------------------------------
# Messages per second the provider accepts (0 = no limit), one token bucket in Redis shared by every worker.
DELIVERY_RATE_PER_SECOND = env_float("DELIVERY_RATE_PER_SECOND", 0.0)
# Tokens the bucket holds when idle; 1 means messages are spread evenly, never sent in a burst.
DELIVERY_RATE_BURST = env_int("DELIVERY_RATE_BURST", 1)
# Messages in flight per worker process through a provider's HTTP API (anymail; SMTP sends one at a time).
# Each is a request answered after 30-150 ms: one at a time a process sends ~20 messages/s at 50 ms. In flight
# counts a message from its submission, so it includes the wait for its token: every sender reserves the next
# one (newsletter.sending.ratelimit), and with 64 in flight between two processes at 1,000/s each waited ~60 ms
# for it before its 50 ms on the wire, which capped the pair near 600/s. 128 leave room for both, and for
# latency up to ~150 ms; the token bucket above still holds the total to the quota. Each costs a greenlet
# and a rendered message (newsletter.sending.wire), and is a row in flight when a worker is killed.
DELIVERY_CONCURRENCY = env_int("DELIVERY_CONCURRENCY", 128)
# A worker holds the chunk it sends under a lease, renewed every third of this while it sends: a worker that has
# not renewed it for this long is dead, and the sweeper hands its chunk to the live ones. Longer than two
# EMAIL_TIMEOUTs, so a live worker waiting on one slow server keeps its chunk.
DELIVERY_LEASE_SECONDS = env_int("DELIVERY_LEASE_SECONDS", 60)
# How often the beat runs the sweeper (`send_digest` sweeps every few seconds while it waits): a dead worker's
# readers go out again at most LEASE + SWEEP seconds after it died, 90 s with the defaults.
DELIVERY_SWEEP_SECONDS = env_int("DELIVERY_SWEEP_SECONDS", 30)
# The rows a dead worker was sending go by the policy: "resend" (nobody is lost; a message that was on the wire
# may arrive twice) or "ambiguous" (never twice; those few may get none).
DELIVERY_STUCK_POLICY = env_str("DELIVERY_STUCK_POLICY", "resend")
if DELIVERY_STUCK_POLICY not in ("resend", "ambiguous"):
    raise ImproperlyConfigured("DELIVERY_STUCK_POLICY must be 'resend' or 'ambiguous'")
# Claims and outcomes are committed without waiting for the disk (PostgreSQL's synchronous_commit=off, for
# those writes only): a database server crash can then cost a few duplicate messages, never a recipient.
# True makes them wait for the flush, for "never twice" together with the "ambiguous" policy.
DELIVERY_LEDGER_SYNC_COMMIT = env_bool("DELIVERY_LEDGER_SYNC_COMMIT", False)
# Transient provider errors (4xx, refused or dropped connections, timeouts, HTTP 429/5xx) are retried for this
# long after a reader's first one, with exponential backoff and jitter, each row at its own time: a provider's
# outage of minutes or hours delays mail, it does not use up a count of attempts. Half a day: the next
# digest comes after that, and a day-old digest is no longer worth an inbox's place.
DELIVERY_RETRY_WINDOW_HOURS = env_float("DELIVERY_RETRY_WINDOW_HOURS", 12.0)
DELIVERY_RETRY_BASE_SECONDS = env_float("DELIVERY_RETRY_BASE_SECONDS", 30.0)
DELIVERY_RETRY_MAX_SECONDS = env_float("DELIVERY_RETRY_MAX_SECONDS", 1800.0)
# Past this share of permanent failures (once enough outcomes are in) the send pauses itself.
DELIVERY_PAUSE_ERROR_RATE = env_float("DELIVERY_PAUSE_ERROR_RATE", 0.2)
DELIVERY_PAUSE_MIN_OUTCOMES = env_int("DELIVERY_PAUSE_MIN_OUTCOMES", 50)
# Past this share of complaints among the messages a running send delivered, it pauses itself: Gmail and Yahoo
# (2024) and Outlook.com (2025) ask bulk senders to stay under 0.1% and never reach 0.3%. Only once this many
# were delivered: one complaint among the first hundred is chance, not a verdict on the send.
DELIVERY_PAUSE_COMPLAINT_RATE = env_float("DELIVERY_PAUSE_COMPLAINT_RATE", 0.003)
DELIVERY_PAUSE_COMPLAINT_MIN_DELIVERED = env_int("DELIVERY_PAUSE_COMPLAINT_MIN_DELIVERED", 1000)
# A message that kills its worker each time must not loop forever: after this many workers died holding one
# reader's row, the row is ambiguous, not queued again.
DELIVERY_MAX_INTERRUPTIONS = env_int("DELIVERY_MAX_INTERRUPTIONS", 3)
# Permanent refusals of an address at RCPT (SMTP 5xx, a provider's rejection) before it is suppressed, as a hard
# bounce is: two, so one bad day of a receiving server (a 550 policy block for a whole domain) suppresses no one.
DELIVERY_REJECTION_LIMIT = env_int("DELIVERY_REJECTION_LIMIT", 2)
# Soft bounces (mailbox full, greylisting) an address may collect before it is suppressed.
DELIVERY_SOFT_BOUNCE_LIMIT = env_int("DELIVERY_SOFT_BOUNCE_LIMIT", 3)
DELIVERY_LEDGER_DAYS = env_int("DELIVERY_LEDGER_DAYS", 90)  # ledger rows and webhook events kept this long
# The sweeper: dead workers' chunks, rows due for a retry, tasks the broker lost (newsletter/sending/sweeper.py).
CELERY_BEAT_SCHEDULE["sweep-stuck-deliveries"] = {
    "task": "newsletter.tasks.sweep_task",
    "schedule": timedelta(seconds=DELIVERY_SWEEP_SECONDS),
}
# arXiv announces at 00:00 UTC (20:00 US Eastern); by 05:30 the HF votes have started to come in.
# Fetch schedules are one PeriodicTask per source, made by `sync_fetch_schedules` (papers/schedules.py).
# In review mode, a digest nobody approved by REVIEW_DEADLINE_HOUR is skipped or sent trending-only.
CELERY_BEAT_SCHEDULE["review-deadline"] = {
    "task": "newsletter.tasks.review_deadline_task",
    "schedule": crontab(minute=5),
}
# --- Ranking --------------------------------------------------------------------------------------------
# The sentence-embedding model for "For you" relevance (`make ml`): "auto" uses it when installed, "on" requires
# it, "off" ranks with the lexical side alone (BM25 with acronyms).
RANKING_EMBEDDINGS = env_str("RANKING_EMBEDDINGS", "auto")
if RANKING_EMBEDDINGS not in ("auto", "on", "off"):
    raise ImproperlyConfigured(f"RANKING_EMBEDDINGS must be auto, on or off, not {RANKING_EMBEDDINGS!r}")
# The model's run-time file (int8 ONNX, 22 MB), built from the packaged weights by `manage.py
# build_embedding_model` (which `make ml` runs); read by every worker that ranks.
RANKING_EMBEDDINGS_MODEL = Path(
    env_str("RANKING_EMBEDDINGS_MODEL", str(VAR_DIR / "models" / "all-MiniLM-L6-v2-int8.onnx"))
)
# --- Subscribers --------------------------------------------------------------------------------
# Sign-ups per client IP and per address in one window. An address limit stops the form from being used to
# flood someone's inbox with confirmation emails; raise both for a load test (bench/bench_web.py does).
SUBSCRIBE_RATE_WINDOW_SECONDS = env_int("SUBSCRIBE_RATE_WINDOW_SECONDS", 3600)
SUBSCRIBE_RATE_PER_IP = env_int("SUBSCRIBE_RATE_PER_IP", 20)
SUBSCRIBE_RATE_PER_ADDRESS = env_int("SUBSCRIBE_RATE_PER_ADDRESS", 3)
# How many proxies in front of the web process append to X-Forwarded-For (0: use the socket's address).
RATELIMIT_TRUSTED_PROXIES = env_int("RATELIMIT_TRUSTED_PROXIES", 0)
CSRF_FAILURE_VIEW = "subscribers.views.csrf_failure"  # a page that says what to do, not Django's debug text
CELERY_BEAT_SCHEDULE["purge-unconfirmed-subscribers"] = {
    "task": "subscribers.tasks.purge_unconfirmed_task",
    "schedule": crontab(hour=3, minute=15),
}
