"""Teachers send lesson photos: checked, stored once by content hash, counted "第 N/M 张".

Pictures the simulator carries inline are stored at once; pictures a platform makes us
fetch go through the background downloader, driven here by a fake fetcher and replier.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import DOWNLOADER, SERVICES, create_app
from bot.dispatch import Services, dispatch
from bot.downloads import retry_delay
from kernel.filetypes import sniff_image
from kernel.messages import ImageRef, IncomingMessage, OutgoingText
from kernel.outbound import OK, FetchError, SendOutcome
from storage.files import photo_path
from storage.models import PendingDownload, Person, Photo, SimMessage, Task
from storage.queries.photos import add_pending_download
from tests.conftest import FakeClock, SimChat


def png(colour: int, padding: int = 0) -> bytes:
    """A real 1×1 PNG whose pixel (and so hash) depends on `colour`."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixel = bytes([0]) + colour.to_bytes(3, "big")
    text = chunk(b"tEXt", b"Comment\x00" + b"x" * padding) if padding else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + text + chunk(b"IDAT", zlib.compress(pixel)) + chunk(b"IEND", b""))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("data,mime", [
    (png(1), "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(32), "image/jpeg"),
    (b"GIF89a\x01\x00\x01\x00" + bytes(16), "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(24), "image/webp"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic"),
    (b"%PDF-1.7\n" + bytes(32), None),
    (b"\x89PNX\r\n\x1a\n" + bytes(8), None),
    ("这不是图片".encode(), None),
    (b"", None),
])
def test_pictures_are_recognised_by_their_magic_bytes(data: bytes, mime: str | None) -> None:
    assert sniff_image(data) == mime


async def photo_rows(db: Any) -> list[tuple[str, str, str, int]]:
    async with db.sessions() as s:
        rows = await s.execute(select(Person.name, Photo.sha256, Photo.mime, Photo.size)
                               .join(Photo, Photo.person_id == Person.id).order_by(Photo.id))
        return [tuple(row) for row in rows]


def stored_files(files_dir: Path) -> list[Path]:
    return sorted(p for p in (files_dir / "photos").rglob("*") if p.is_file()) \
        if (files_dir / "photos").exists() else []


def files_dir_of(app_client: Any) -> Path:
    return app_client.server.app[SERVICES].files_dir


async def test_three_photos_complete_the_task(chat: SimChat, app_client, seeded) -> None:
    first = await chat.say("张明", "", image=b64(png(1)), school=None)
    assert "已收到第 1/3 张" in first and "还差 2 张" in first and "4月30日 17:00" in first
    second = await chat.say("张明", "@研修助手 听课照片", image=b64(png(2)))
    assert "已收到第 2/3 张" in second
    third = await chat.say("张明", "", image=b64(png(3)), school=None)
    assert "已收到第 3/3 张" in third and "照片已交齐" in third

    rows = await photo_rows(seeded)
    assert [r[0] for r in rows] == ["张明"] * 3 and {r[2] for r in rows} == {"image/png"}
    for colour, (_, sha, mime, size) in zip((1, 2, 3), rows, strict=True):
        data = png(colour)
        assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
        assert photo_path(files_dir_of(app_client), sha, mime).read_bytes() == data
    assert "推门听课出课照片(三张不同角度)：3/3 张" in await chat.say("张明", "进度")


async def test_the_same_photo_twice_counts_once(chat: SimChat, app_client, seeded) -> None:
    await chat.say("张明", "", image=b64(png(7)), school=None)
    again = await chat.say("张明", "", image=b64(png(7)), school=None)
    assert "之前已经收到过" in again and "现在是 1/3 张" in again and "已收到第" not in again
    assert len(await photo_rows(seeded)) == 1
    assert len(stored_files(files_dir_of(app_client))) == 1
    # another teacher sending the same picture has their own count
    assert "已收到第 1/3 张" in await chat.say("李秀英", "", image=b64(png(7)), school=None)
    assert len(stored_files(files_dir_of(app_client))) == 1  # one file per content


async def test_a_file_that_is_not_a_picture_is_refused(chat: SimChat, app_client, seeded) -> None:
    reply = await chat.say("张明", "", image=b64(b"%PDF-1.7\n%%EOF\n" + bytes(100)), school=None)
    assert "不是图片" in reply and "JPG" in reply and "没有保存" in reply and "已收到" not in reply
    assert await photo_rows(seeded) == []
    assert stored_files(files_dir_of(app_client)) == []


async def test_a_picture_over_the_size_limit_is_refused(chat: SimChat, app_client, seeded) -> None:
    app_client.server.app[SERVICES].max_photo_bytes = 512 * 1024
    reply = await chat.say("张明", "", image=b64(png(6, padding=600_000)), school=None)
    assert "超过 0.5 MB" in reply and "没有保存" in reply and "压缩" in reply
    assert "已收到" not in reply
    assert await photo_rows(seeded) == []
    assert stored_files(files_dir_of(app_client)) == []
    assert "已收到第 1/3 张" in await chat.say("张明", "", image=b64(png(6)), school=None)


async def test_after_the_due_time_photos_are_refused(chat: SimChat, app_client, seeded, clock: FakeClock) -> None:
    clock.set(2023, 4, 30, 17, 1)
    reply = await chat.say("张明", "", image=b64(png(1)), school=None)
    assert "已于 4月30日 17:00 截止" in reply and "没有保存" in reply
    assert await photo_rows(seeded) == []
    assert stored_files(files_dir_of(app_client)) == []


async def test_a_redelivered_photo_is_stored_and_answered_once(chat: SimChat, seeded) -> None:
    a = await chat.send("张明", "", image=b64(png(1)), school=None, msg_id="photo-1")
    b = await chat.send("张明", "", image=b64(png(1)), school=None, msg_id="photo-1")
    assert b["duplicate"] is True and a["reply"] == b["reply"] and "已收到第 1/3 张" in b["reply"]
    assert len(await photo_rows(seeded)) == 1
    async with seeded.sessions() as s:
        assert await s.scalar(select(func.count()).where(SimMessage.from_bot.is_(True))) == 1


async def test_an_unknown_sender_cannot_store_photos(app_client, seeded) -> None:
    resp = await app_client.post("/sim/api/send", json={
        "person_id": 999, "conversation_id": "sim-dm-999", "text": "", "image": b64(png(1)),
        "msg_id": "u1"})
    assert "花名册里还没有您" in (await resp.json())["reply"]
    assert await photo_rows(seeded) == []
    assert stored_files(files_dir_of(app_client)) == []


async def test_photos_without_a_photo_task_are_not_kept(aiohttp_client, config, clock, db,
                                                        spec_plan_text: str) -> None:
    from tests.conftest import seed

    await seed(db, spec_plan_text.replace('kind = "photos"', 'kind = "reflection"')
               .replace("min_photos = 3", "min_chars = 300"), clock.now)
    chat = SimChat(await aiohttp_client(create_app(config, clock=clock)))
    reply = await chat.say("张明", "", image=b64(png(1)), school=None)
    assert "没有需要提交照片的任务" in reply
    assert await photo_rows(db) == []


# ---------------------------------------------------------------- pictures fetched later


@dataclass
class FakeFetcher:
    """Answers each fetch with the next scripted result for that ref (the last one repeats)."""

    script: dict[str, list[bytes | FetchError | Exception]]
    calls: list[ImageRef] = field(default_factory=list)

    async def fetch(self, image: ImageRef) -> bytes | FetchError:
        self.calls.append(image)
        results = self.script[image.ref]
        result = results.pop(0) if len(results) > 1 else results[0]
        if isinstance(result, Exception):
            raise result
        return result


@dataclass
class FakeReplier:
    sent: list[tuple[Mapping[str, Any], OutgoingText]] = field(default_factory=list)
    outcome: SendOutcome = OK

    async def reply(self, context: Mapping[str, Any], text: OutgoingText) -> SendOutcome:
        self.sent.append((context, text))
        return self.outcome


ROUTE = {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=FAKE"}


def picture_message(services: Services, msg_id: str, *refs: str) -> IncomingMessage:
    return IncomingMessage(platform="dingtalk", msg_id=msg_id, conversation_id="cid-dm-zhangming",
                           is_group=False, sender_id="dt-zhangming", sender_name="张明", text="",
                           received_at=services.clock(), images=tuple(ImageRef(r) for r in refs),
                           reply_context=ROUTE)


@pytest.fixture
async def fetching(app_client: Any) -> tuple[Services, Any, FakeFetcher, FakeReplier]:
    app = app_client.server.app
    fetcher, replier = FakeFetcher({}), FakeReplier()
    services = app[SERVICES]
    services.fetchers["dingtalk"] = fetcher
    services.repliers["dingtalk"] = replier
    downloader = app[DOWNLOADER]
    await downloader.stop()  # the test drives every pass itself with drain()
    return services, downloader, fetcher, replier


async def pending_rows(db: Any) -> list[PendingDownload]:
    async with db.sessions() as s:
        return list((await s.scalars(select(PendingDownload).order_by(PendingDownload.id))).all())


async def test_a_fetched_picture_is_stored_and_answered(fetching, seeded) -> None:
    services, downloader, fetcher, replier = fetching
    fetcher.script["code-1"] = [png(1)]
    first = await dispatch(services, picture_message(services, "msg-1", "code-1"))
    assert first.reply is None  # one visible reply per photo: the one once it is stored
    [row] = await pending_rows(seeded)
    assert (row.state, row.ref, row.reply_route, row.attempts) == ("pending", "code-1", ROUTE, 0)

    again = await dispatch(services, picture_message(services, "msg-1", "code-1"))  # redelivery
    assert again.duplicate and again.reply is None
    assert len(await pending_rows(seeded)) == 1

    await downloader.drain()
    [row] = await pending_rows(seeded)
    assert (row.state, row.attempts, row.last_error) == ("done", 1, None)
    assert len(replier.sent) == 1
    context, text = replier.sent[0]
    assert context == ROUTE and "已收到第 1/3 张" in text.text
    [(name, sha, mime, _)] = await photo_rows(seeded)
    assert name == "张明" and photo_path(services.files_dir, sha, mime).read_bytes() == png(1)
    assert await downloader.drain() == 0 and len(replier.sent) == 1  # nothing twice


async def test_several_pictures_in_one_message_and_a_repeat(fetching, seeded) -> None:
    services, downloader, fetcher, replier = fetching
    fetcher.script.update({"a": [png(1)], "b": [png(2)], "c": [png(1)]})
    await dispatch(services, picture_message(services, "msg-2", "a", "b"))
    await downloader.drain()
    await dispatch(services, picture_message(services, "msg-3", "c"))
    await downloader.drain()
    texts = sorted(t.text for _, t in replier.sent)
    assert len(texts) == 3 and "之前已经收到过" in texts[-1]
    assert any("第 2/3 张" in t for t in texts)
    assert len(await photo_rows(seeded)) == 2


async def test_a_failing_fetch_is_retried_with_backoff(fetching, seeded, clock: FakeClock) -> None:
    services, downloader, fetcher, replier = fetching
    fetcher.script["slow"] = [FetchError("HTTP 502"), TimeoutError(), png(4)]
    await dispatch(services, picture_message(services, "msg-4", "slow"))
    await downloader.drain()
    [row] = await pending_rows(seeded)
    assert (row.state, row.attempts, row.last_error) == ("pending", 1, "HTTP 502")
    assert await downloader.drain() == 0  # not due again yet: no sleeping, the clock decides
    clock.advance(seconds=retry_delay(1).total_seconds())
    await downloader.drain()
    [row] = await pending_rows(seeded)
    assert (row.state, row.attempts, row.last_error) == ("pending", 2, "fetch raised TimeoutError")
    clock.advance(seconds=(retry_delay(2) - retry_delay(1)).total_seconds())
    await downloader.drain()
    [row] = await pending_rows(seeded)
    assert (row.state, row.attempts) == ("done", 3)
    assert len(fetcher.calls) == 3 and [("已收到第 1/3 张" in t.text) for _, t in replier.sent] == [True]


async def test_the_downloader_gives_up_after_its_attempts(fetching, seeded, clock: FakeClock) -> None:
    services, downloader, fetcher, replier = fetching
    fetcher.script["gone"] = [FetchError("HTTP 503")]
    await dispatch(services, picture_message(services, "msg-5", "gone"))
    for _ in range(downloader.max_attempts + 2):
        await downloader.drain()
        clock.advance(hours=1)
    [row] = await pending_rows(seeded)
    assert (row.state, row.attempts, row.last_error) == ("failed", downloader.max_attempts, "HTTP 503")
    assert len(fetcher.calls) == downloader.max_attempts
    [(_, text)] = replier.sent
    assert "没能保存" in text.text and "重新发送" in text.text
    assert await photo_rows(seeded) == []


async def test_a_permanent_error_or_a_non_picture_gives_up_at_once(fetching, seeded) -> None:
    services, downloader, fetcher, replier = fetching
    fetcher.script.update({"expired": [FetchError("download code expired", retry=False)],
                           "pdf": [b"%PDF-1.7\n" + bytes(64)]})
    await dispatch(services, picture_message(services, "msg-6", "expired", "pdf"))
    await downloader.drain()
    rows = {r.ref: r for r in await pending_rows(seeded)}
    assert (rows["expired"].state, rows["expired"].attempts) == ("failed", 1)
    assert (rows["pdf"].state, rows["pdf"].last_error) == ("failed", "not_image")
    texts = sorted(t.text for _, t in replier.sent)
    assert len(texts) == 2 and any("不是图片" in t for t in texts)
    assert await photo_rows(seeded) == [] and stored_files(services.files_dir) == []


async def test_a_picture_past_the_due_time_is_not_queued(fetching, seeded, clock: FakeClock) -> None:
    services, downloader, fetcher, replier = fetching
    clock.set(2023, 5, 1, 9, 0)
    result = await dispatch(services, picture_message(services, "msg-7", "late"))
    assert result.reply is not None and "已于 4月30日 17:00 截止" in result.reply.text
    assert await pending_rows(seeded) == []


async def test_pending_downloads_resume_when_the_app_starts(aiohttp_client, config, clock, seeded) -> None:
    async with seeded.sessions() as s, s.begin():
        person = await s.scalar(select(Person.id).where(Person.name == "张明"))
        task = await s.scalar(select(Task.id).where(Task.key == "lesson-photos"))
        await add_pending_download(s, platform="dingtalk", msg_id="before-restart", ref="left",
                                   aes_key=None, person_id=person, task_id=task,
                                   reply_route=ROUTE, now=clock.now)
    app = create_app(config, clock=clock)
    fetcher, replier = FakeFetcher({"left": [png(9)]}), FakeReplier()
    app[SERVICES].fetchers["dingtalk"] = fetcher  # registered before start, as adapters do
    app[SERVICES].repliers["dingtalk"] = replier
    await aiohttp_client(app)  # startup runs the downloader's first pass
    await app[DOWNLOADER].drain()
    [row] = await pending_rows(seeded)
    assert row.state == "done" and len(fetcher.calls) == 1
    assert [("已收到第 1/3 张" in t.text) for _, t in replier.sent] == [True]


def test_the_backoff_doubles_and_is_capped() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(6)]
    assert delays == [0, 60, 180, 420, 900, 1500]
