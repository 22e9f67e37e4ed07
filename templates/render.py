"""Every sentence a person reads comes from templates/; this module renders them."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from kernel.messages import OutgoingText, Reply

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#>|<])")
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
_LEADING_ZERO = re.compile(r"(?<!\d)0(\d)(?=[月日])")


def md_escape(value: object) -> str:
    """Escape user text for markdown so a name or a reflection cannot change the layout."""
    return _MD_SPECIAL.sub(r"\\\1", str(value))


# the formats the templates use, written out (strftime with CJK text is slow on the hot path)
_FAST_FORMATS = {
    "%m月%d日 %H:%M": lambda d: f"{d.month}月{d.day}日 {d.hour:02d}:{d.minute:02d}",
    "%m月%d日": lambda d: f"{d.month}月{d.day}日",
    "%H:%M": lambda d: f"{d.hour:02d}:{d.minute:02d}",
    "%H:%M:%S": lambda d: f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}",
}


_last_local: dict[str, tuple[datetime, ZoneInfo | None, str]] = {}  # fmt -> (value, tz, text)


def local_time(value: datetime | None, fmt: str = "%m月%d日 %H:%M", tz: ZoneInfo | None = None) -> str:
    """A time in the plan's zone, as people write it: 3月7日 10:00 (no leading zeros on dates).

    Shown to the second at most, so it is cached by whole second: a session's start is in
    every check-in reply, and a burst's check-in times share their seconds. The last value
    shown in each format is also remembered by identity (datetimes are immutable, and the
    memo holds the object, so its id cannot be reused): a session's start is one object for
    the whole burst, and this skips even the timestamp.
    """
    if value is None:
        return ""
    last = _last_local.get(fmt)
    if last is not None and last[0] is value and last[1] is tz:
        return last[2]
    text = _local_time(int(value.timestamp()), fmt, tz)
    _last_local[fmt] = (value, tz, text)
    return text


@lru_cache(maxsize=2048)
def _local_time(seconds: int, fmt: str, tz: ZoneInfo | None) -> str:
    local = datetime.fromtimestamp(seconds, tz or DEFAULT_TZ)
    fast = _FAST_FORMATS.get(fmt)
    if fast is not None:
        return fast(local)
    return _LEADING_ZERO.sub(r"\1", local.strftime(fmt))  # 03月07日 → 3月7日


def hours(value: float) -> str:
    return f"{value:g}"


def weekday_cn(value: datetime, tz: ZoneInfo | None = None) -> str:
    return "一二三四五六日"[value.astimezone(tz or DEFAULT_TZ).weekday()]


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        # asked on every render: remembered per template name
        autoescape=lru_cache(maxsize=None)(
            select_autoescape(enabled_extensions=("html",), default_for_string=False)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,  # templates ship with the code: no stat() of the file per render
    )
    env.filters.update(md=md_escape, local_time=local_time, hours=hours, weekday_cn=weekday_cn)
    return env


@lru_cache(maxsize=256)
def _template(name: str) -> Template:
    template = environment().get_template(name)
    # Jinja keeps a template's globals as a ChainMap over the environment's, and copies it
    # key by key into every render's context; ours are fixed once the environment is
    # built, so a plain dict gives the same names at a fraction of the cost
    template.globals = dict(template.globals)
    return template


def _render(template: str, data: dict[str, object]) -> str:
    return _template(template).render(data).strip()  # the dict as is: no keyword re-packing


def render_text(template: str, **data: object) -> str:
    return _render(template, data)


def render_reply(reply: Reply, markdown: bool = False) -> OutgoingText:
    """Render a handler's Reply for a platform; `markdown` picks the dialect."""
    text = _render(f"chat/{reply.template}.j2", {**reply.data, "markdown": markdown})
    # by position, in field order (see kernel/messages.py): text, markdown, title, mentions
    return OutgoingText(text, markdown, str(reply.data.get("title", "研修助手")), reply.mentions)
