"""Instance settings from ``tessera.yaml`` (SPEC §2), overridable by environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metadata import (
    COMPANY_KEYS,
    DefinitionError,
    DefinitionProblem,
    canonical_locale,
    locale_problem,
    timezone_problem,
)
from runtime.files_config import FileSettings, file_settings

BUILTIN_MODULES = Path(__file__).resolve().parent.parent / "modules"
ALLOWED_KEYS = frozenset(
    {
        "database_url",
        "broker_url",
        "modules",
        "module_paths",
        "customizations",
        "secret_key",
        "max_body_bytes",
        "pool_size",
        "meta_api_writes",
        "reload_interval",
        "smtp",
        "mail",
        "webhook_secret",
        "outbox",
        "schedule_check_seconds",
        "auth",
        "trusted_proxies",
        "company",
        "timezone",
        "files",
        "locale",
    }
)
DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where e-mail actions are sent (``smtp:`` in ``tessera.yaml``)."""

    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    sender: str = "tessera@localhost"
    """The From address (``from:`` in the file)."""
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class MailSettings:
    """How e-mails leave (``mail:`` in ``tessera.yaml``): ``transport: smtp`` (the default,
    the ``smtp:`` server) or ``transport: folder`` with a ``path`` (relative to the instance
    folder) that receives each message as an ``.eml`` file (docs/delivery.md)."""

    transport: str = "smtp"
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """How outbox events are delivered (``outbox:`` in ``tessera.yaml``)."""

    max_attempts: int = 8
    backoff_seconds: float = 2.0
    """Wait after the first failed attempt; doubled after each further one."""
    backoff_cap_seconds: float = 900.0
    lease_seconds: float = 60.0
    """How long a deliverer holds an event; a deliverer that dies frees it after this."""
    sweep_seconds: float = 5.0
    """How often due events are looked for (new ones are handed over at once)."""
    timeout_seconds: float = 10.0
    """Per webhook request."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Sign-in and API tokens (``auth:`` in ``tessera.yaml``)."""

    token_hours: float = 12.0
    """Lifetime of a token issued by ``POST /api/v1/auth/token``."""
    login_attempts: int = 5
    """Failed sign-ins allowed per user name, and four times as many per client address,
    within ``login_window_seconds``; more get 429 until the window has passed."""
    login_window_seconds: float = 900.0
    token_cache_seconds: float = 5.0
    """How long a server process trusts a token it has checked; without a broker, a token
    revoked from another process (the command line) stops working within this time (with
    one, at once: ``runtime.shared_auth``)."""


@dataclass(frozen=True, slots=True)
class CompanySettings:
    """The business the instance keeps the books of (``company:`` in ``tessera.yaml``); each
    key is a name of expressions: ``company_currency``, ``company_name``."""

    name: str | None = None
    currency: str | None = None
    """ISO 4217 code (``EUR``): the currency ledgers hold amounts in (docs/ledgers.md)."""

    def instance_names(self) -> dict[str, Any]:
        return {f"company_{key}": getattr(self, key) for key in COMPANY_KEYS}


_COMPANY_KEYS: dict[str, type] = dict.fromkeys(COMPANY_KEYS, str)
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_AUTH_KEYS = {
    "token_hours": float,
    "login_attempts": int,
    "login_window_seconds": float,
    "token_cache_seconds": float,
}
_SMTP_KEYS = {
    "host": str,
    "port": int,
    "username": str,
    "password": str,
    "starttls": bool,
    "ssl": bool,
    "from": str,
    "timeout": float,
}
_MAIL_KEYS: dict[str, type] = {"transport": str, "path": str}
_OUTBOX_KEYS = {
    "max_attempts": int,
    "backoff_seconds": float,
    "backoff_cap_seconds": float,
    "lease_seconds": float,
    "sweep_seconds": float,
    "timeout_seconds": float,
}


def _section(path: Path, data: dict[str, Any], name: str, keys: dict[str, type]) -> dict[str, Any]:
    raw = data.get(name) or {}

    def problem(message: str) -> DefinitionError:
        return DefinitionError([DefinitionProblem(str(path), 1, 1, f"{name}: {message}")])

    if not isinstance(raw, dict):
        raise problem("expected a mapping")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise problem(f"unknown key(s): {', '.join(unknown)}; known: {', '.join(keys)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = keys[key]
        if value is None:
            continue
        if kind is bool and not isinstance(value, bool):
            raise problem(f"'{key}' must be true or false")
        if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise problem(f"'{key}' must be a number")
        if kind is str and not isinstance(value, str):
            raise problem(f"'{key}' must be text")
        values["sender" if key == "from" else key] = kind(value)
    return values


@dataclass(frozen=True, slots=True)
class Settings:
    instance_dir: Path
    config_path: Path | None
    database_url: str
    broker_url: str | None = None
    modules: tuple[str, ...] = ()
    module_paths: tuple[Path, ...] = ()
    customizations: Path | None = None
    secret_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    pool_size: int = 10
    meta_api_writes: bool = False
    """Whether the meta API may change definitions; an admin role replaces it in issue 5."""
    reload_interval: float = 2.0
    """Seconds between checks for migrations applied by other processes; 0 turns it off."""
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    webhook_secret: str | None = None
    """Key of the webhooks' HMAC-SHA256 signature; ``secret_key`` when absent."""
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    schedule_check_seconds: float = 15.0
    """How often schedulers look for due slots of scheduled rules."""
    auth: AuthSettings = field(default_factory=AuthSettings)
    company: CompanySettings = field(default_factory=CompanySettings)
    timezone: str = "UTC"
    """The instance time zone (IANA name): the date ``today()`` gives and the calendar days
    of the date functions (docs/rules.md, "Dates and working time")."""
    locale: str = "en_US"
    """How people read numbers, money and dates in the web UI, print formats and CSV exports
    for people, unless a user chose their own (docs/locales.md); never the API's JSON."""
    files: FileSettings = field(default_factory=FileSettings)
    """Where uploaded files are kept and what is accepted (``runtime.files_config``)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses (or networks: ``10.0.0.0/8``) of reverse proxies whose ``X-Forwarded-For``
    and ``X-Forwarded-Proto`` are believed; from any other peer they are ignored. None by
    default: the client address is the peer's (the sign-in throttle counts per address)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def search_paths(self) -> list[Path]:
        return [*self.module_paths, BUILTIN_MODULES]

    @classmethod
    def load(cls, config: Path | str | None = None) -> Settings:
        """Read the instance configuration; raise ``DefinitionError`` if it is malformed."""
        path = Path(config or os.environ.get("TESSERA_CONFIG") or "tessera.yaml")
        data: dict[str, Any] = {}
        if path.is_file():
            loaded = yaml.safe_load(path.read_text("utf-8")) or {}
            if not isinstance(loaded, dict):
                raise DefinitionError(
                    [DefinitionProblem(str(path), 1, 1, "expected a mapping of settings")]
                )
            unknown = sorted(set(loaded) - ALLOWED_KEYS)
            if unknown:
                raise DefinitionError(
                    [
                        DefinitionProblem(
                            str(path), 1, 1, f"unknown setting(s): {', '.join(unknown)}"
                        )
                    ]
                )
            data = loaded
        instance_dir = path.resolve().parent
        url = (
            os.environ.get("TESSERA_DATABASE_URL")
            or data.get("database_url")
            or ("sqlite:///tessera.db")
        )
        return cls(
            instance_dir=instance_dir,
            config_path=path if path.is_file() else None,
            database_url=_absolute_sqlite(str(url), instance_dir),
            broker_url=os.environ.get("TESSERA_BROKER_URL") or data.get("broker_url"),
            modules=tuple(data.get("modules") or ()),
            module_paths=tuple(
                (instance_dir / p).resolve() for p in data.get("module_paths") or ()
            ),
            customizations=(instance_dir / data["customizations"]).resolve()
            if data.get("customizations")
            else None,
            secret_key=data.get("secret_key"),
            max_body_bytes=int(data.get("max_body_bytes", DEFAULT_MAX_BODY)),
            pool_size=int(data.get("pool_size", 10)),
            meta_api_writes=bool(data.get("meta_api_writes", False)),
            reload_interval=float(data.get("reload_interval", 2.0)),
            smtp=SmtpSettings(**_section(path, data, "smtp", _SMTP_KEYS)),
            mail=_mail(path, data, instance_dir),
            webhook_secret=data.get("webhook_secret"),
            outbox=OutboxSettings(**_section(path, data, "outbox", _OUTBOX_KEYS)),
            schedule_check_seconds=float(data.get("schedule_check_seconds", 15.0)),
            auth=AuthSettings(**_section(path, data, "auth", _AUTH_KEYS)),
            trusted_proxies=_trusted_proxies(path, data.get("trusted_proxies")),
            company=_company(path, data),
            timezone=_timezone(path, data.get("timezone")),
            files=file_settings(path, data.get("files"), instance_dir),
            locale=_locale(path, data.get("locale")),
        )

    def instance_names(self) -> dict[str, Any]:
        """What the instance gives the expressions: ``company_*`` and the time zone."""
        return {**self.company.instance_names(), "timezone": self.timezone}

    @property
    def signing_key(self) -> str | None:
        return self.webhook_secret or self.secret_key


def _timezone(path: Path, value: Any) -> str:
    if value is None:
        return "UTC"
    problem = timezone_problem(value)
    if problem is not None:
        raise DefinitionError([DefinitionProblem(str(path), 1, 1, f"timezone: {problem}")])
    return str(value)


def _locale(path: Path, value: Any) -> str:
    if value is None:
        return "en_US"
    canonical = canonical_locale(value)
    if canonical is None:
        line, column = _key_position(path, "locale")
        problem = locale_problem(value)
        raise DefinitionError([DefinitionProblem(str(path), line, column, f"locale: {problem}")])
    return canonical


def _key_position(path: Path, key: str) -> tuple[int, int]:
    """Where the value of the top-level ``key`` is written in the settings file (1-based
    line and column), so that an error points at it; 1:1 if it cannot be found."""
    try:
        root = yaml.compose(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1, 1
    if isinstance(root, yaml.MappingNode):
        for name, value in root.value:
            if isinstance(name, yaml.ScalarNode) and name.value == key:
                return value.start_mark.line + 1, value.start_mark.column + 1
    return 1, 1


def _mail(path: Path, data: dict[str, Any], instance_dir: Path) -> MailSettings:
    from runtime.delivery.mail import transport_names

    values = _section(path, data, "mail", _MAIL_KEYS)
    transport = values.get("transport", "smtp")

    def problem(message: str) -> DefinitionError:
        return DefinitionError([DefinitionProblem(str(path), 1, 1, f"mail: {message}")])

    if transport not in transport_names():
        raise problem(f"unknown transport '{transport}' (known: {', '.join(transport_names())})")
    folder = values.get("path")
    if transport == "folder" and not (folder or "").strip():
        raise problem("transport 'folder' needs a 'path': the folder the .eml files go to")
    if transport != "folder" and folder is not None:
        raise problem(f"'path' is for transport 'folder', not '{transport}'")
    if folder is not None and "\x00" in folder:
        raise problem("path: a NUL character is not allowed in a path")
    return MailSettings(
        transport=transport, path=(instance_dir / folder).resolve() if folder else None
    )


def _company(path: Path, data: dict[str, Any]) -> CompanySettings:
    company = CompanySettings(**_section(path, data, "company", _COMPANY_KEYS))
    if company.currency is not None and not _CURRENCY_CODE.fullmatch(company.currency):
        raise DefinitionError(
            [
                DefinitionProblem(
                    str(path),
                    1,
                    1,
                    f"company: currency '{company.currency}' is not a currency code (three "
                    "capital letters, ISO 4217: EUR, USD)",
                )
            ]
        )
    return company


def _trusted_proxies(path: Path, raw: Any) -> tuple[str, ...]:
    """``trusted_proxies``: a list of IP addresses and networks, each written the way uvicorn
    compares them (``10.0.0.5``, ``10.0.0.0/8``; host bits cleared, ``::1`` compressed)."""

    def problem(message: str) -> DefinitionError:
        return DefinitionError([DefinitionProblem(str(path), 1, 1, f"trusted_proxies: {message}")])

    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise problem("expected a list of IP addresses or networks (10.0.0.5, 10.0.0.0/8)")
    proxies = []
    for item in raw:
        text = str(item).strip()
        try:
            if "/" in text:
                proxies.append(str(ipaddress.ip_network(text, strict=False)))
            else:
                proxies.append(str(ipaddress.ip_address(text)))
        except ValueError:
            raise problem(
                f"'{text}' is not an IP address or network (host names and '*' are not "
                "accepted: name each proxy)"
            ) from None
    return tuple(dict.fromkeys(proxies))


def _absolute_sqlite(url: str, base: Path) -> str:
    """``sqlite:///tessera.db`` is relative to the instance folder, not the working folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        relative = url[len(prefix) :]
        if relative and relative != ":memory:":
            return prefix + str((base / relative).resolve())
    return url
