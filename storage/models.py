"""SQLAlchemy 2.0 models. Unique keys carry the exactly-once guarantees (see ARCHITECTURE.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC everywhere."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class School(Base):
    __tablename__ = "school"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    township: Mapped[str | None] = mapped_column(String(100))  # 乡镇: a township lead sees its schools


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))  # teacher | school_lead | township_lead | district_admin
    title: Mapped[str | None] = mapped_column(String(20))  # the roster's word: 校长, 教研组长…
    mobile: Mapped[str | None] = mapped_column(String(30))
    subject: Mapped[str | None] = mapped_column(String(50))
    stage: Mapped[str | None] = mapped_column(String(50))


class Identity(Base):
    """Who a platform's user id is: one person per (platform, user id), whatever the platform."""

    __tablename__ = "identity"
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)


class ChatGroup(Base):
    __tablename__ = "chat_group"
    __table_args__ = (UniqueConstraint("platform", "conversation_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[str] = mapped_column(String(200))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    title: Mapped[str | None] = mapped_column(String(200))
    # proactive-send route kind (a platform's SendRoute.kind), or None: replies only
    route_kind: Mapped[str | None] = mapped_column(String(30))
    route_url: Mapped[str | None] = mapped_column(Text)
    route_secret: Mapped[str | None] = mapped_column(Text)
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Term(Base):
    __tablename__ = "term"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    required_hours: Mapped[float] = mapped_column(Float)
    plan_toml: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Theme(Base):
    __tablename__ = "theme"
    __table_args__ = (UniqueConstraint("term_id", "month"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("term.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    title: Mapped[str] = mapped_column(String(300))
    form: Mapped[str | None] = mapped_column(String(300))


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("term_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("term.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # reflection | photos
    title: Mapped[str] = mapped_column(String(300))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    hours: Mapped[float] = mapped_column(Float, default=0)


class SessionOccurrence(Base):
    __tablename__ = "session_occurrence"
    __table_args__ = (UniqueConstraint("term_id", "name", "starts_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    term_id: Mapped[int] = mapped_column(ForeignKey("term.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    activity: Mapped[str] = mapped_column(String(100), default="")  # the plan's activity id
    unit: Mapped[str] = mapped_column(String(200), default="")  # one attendance (attend = "one": the cycle)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    hours: Mapped[float] = mapped_column(Float, default=0)


class Checkin(Base):
    __tablename__ = "checkin"
    __table_args__ = (UniqueConstraint("person_id", "occurrence_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("session_occurrence.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    platform: Mapped[str] = mapped_column(String(20))
    msg_id: Mapped[str] = mapped_column(String(200))


class Leave(Base):
    __tablename__ = "leave"
    __table_args__ = (UniqueConstraint("person_id", "occurrence_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    occurrence_id: Mapped[int] = mapped_column(ForeignKey("session_occurrence.id"), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Submission(Base):
    __tablename__ = "submission"
    __table_args__ = (
        UniqueConstraint("person_id", "task_id"),
        # what the digests and the dashboard's trend read, in an index of its own: the rows
        # also hold the text (~3 KB of 1000字 each, stored before these columns), which a
        # table scan reads past
        Index("ix_submission_digest", "task_id", "person_id", "state", "chars", "flag",
              "similar_to_person_id", "similarity", "accepted_at", "updated_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))  # led by the digest index
    text: Mapped[str] = mapped_column(Text)
    chars: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))  # draft | accepted
    flag: Mapped[str | None] = mapped_column(String(50))  # near_duplicate
    similar_to_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    similarity: Mapped[float | None] = mapped_column(Float)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Photo(Base):
    __tablename__ = "photo"
    __table_args__ = (UniqueConstraint("person_id", "task_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class FileSubmission(Base):
    """A document handed in for a file task (教案, 课件, 证书, 材料), stored under its hash.

    `owner` is whose it counts for: "p:<person id>" for a teacher's task, "s:<school id>"
    for a school's, "s:<school id>:<subject>" for a school's subject; the same file twice
    counts once."""

    __tablename__ = "file_submission"
    __table_args__ = (UniqueConstraint("task_id", "owner", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(120))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))  # who sent it
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))  # the file's own name, as sent
    ext: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class PendingDownload(Base):
    """A picture or document acknowledged to the platform but not yet fetched; resumed on start."""

    __tablename__ = "pending_download"
    __table_args__ = (UniqueConstraint("platform", "msg_id", "ref"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    msg_id: Mapped[str] = mapped_column(String(200))
    ref: Mapped[str] = mapped_column(Text)
    aes_key: Mapped[str | None] = mapped_column(Text)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"))
    reply_route: Mapped[dict | None] = mapped_column(JSON)  # how to tell the teacher "第 N/M 张"
    kind: Mapped[str] = mapped_column(String(10), default="photo")  # photo | file
    name: Mapped[str | None] = mapped_column(String(255))  # a file's own name
    owner: Mapped[str | None] = mapped_column(String(120))  # whose a file counts for (queries/files.py)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Inbound(Base):
    """A platform message already handled, with the reply it got (to answer a redelivery)."""

    __tablename__ = "inbound"
    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    msg_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reply_text: Mapped[str | None] = mapped_column(Text)


class Outbox(Base):
    """A proactive message; exists once per (kind, ref, group) and is sent once."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("kind", "ref", "group_id"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(300))
    group_id: Mapped[int] = mapped_column(ForeignKey("chat_group.id"))
    text: Mapped[str] = mapped_column(Text)
    markdown: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(String(200), default="")
    mentions: Mapped[list] = mapped_column(JSON, default=list)
    image_path: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sending|sent|failed|skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SimMessage(Base):
    """What the local simulator's chat shows: messages typed and what the bot said."""

    __tablename__ = "sim_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(200), index=True)
    sender: Mapped[str] = mapped_column(String(100))  # person name or "bot"
    from_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChangeStamp(Base):
    """A counter per kind of rarely changed data that processes cache ("directory": people,
    schools, groups); bumped in the writing transaction, compared by every process."""

    __tablename__ = "change_stamp"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class PendingAction(Base):
    """Something that reaches many people, asked for and not yet confirmed (广播, 改绑):
    one per person at a time, carried out by that person's `确认` before `expires_at`."""

    __tablename__ = "pending_action"
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # broadcast | rebind
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SchedulerLease(Base):
    __tablename__ = "scheduler_lease"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
