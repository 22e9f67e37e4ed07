"""Documents in chat (issue 19): 教案, 课件, 证书 and a school's 材料, on seed 003's programme.

A document is typed by its bytes, goes to the file task its name names (or the one chosen
with 「文件 <名称>」, or the only one open), is stored once per owner by content hash, and
is answered "第 N/M 个文件". Over loopback through the simulator; the platform path (fetched
after the ack) with a fake fetcher, as the photo tests do.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import DOWNLOADER, SERVICES, create_app
from bot.dispatch import dispatch
from kernel.filetypes import sniff_document
from kernel.messages import ImageRef, IncomingMessage
from storage.files import document_path
from storage.models import FileSubmission, PendingDownload, Person, Task
from tests.conftest import DATA, FakeClock, SimChat, local, seed
from tests.test_photos import FakeFetcher, FakeReplier, png

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)


def office(kind: str, marker: str = "") -> bytes:
    """A small but real OOXML package (docx / pptx / xlsx): what Word and WPS write."""
    part = {"docx": "word/document.xml", "pptx": "ppt/presentation.xml",
            "xlsx": "xl/workbook.xml"}[kind]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part, f"<doc>{marker}</doc>")
    return buffer.getvalue()


def plain_zip(marker: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("听课记录.txt", marker)
    return buffer.getvalue()


def pdf(marker: str = "") -> bytes:
    return f"%PDF-1.7\n% {marker}\n%%EOF\n".encode()


@pytest.mark.parametrize("data,name,ext", [
    (pdf(), "证书.pdf", "pdf"),
    (office("docx"), "教案.docx", "docx"),
    (office("pptx"), "课件.pptx", "pptx"),
    (office("xlsx"), "信息表.xlsx", "xlsx"),
    (office("docx"), "教案.pdf", "docx"),          # the bytes decide, not the name
    (plain_zip("x"), "材料.docx", "zip"),          # a zip named .docx is a zip
    (plain_zip("x"), "第一次.zip", "zip"),
    (OLE2, "教案.wps", "wps"),                     # WPS 文字 in the old container
    (OLE2, "信息表.et", "et"),
    (OLE2, "教案", "doc"),
    (OLE2, "病毒.exe", "doc"),
    (b"Rar!\x1a\x07\x01\x00" + bytes(20), "材料.rar", "rar"),
    (b"7z\xbc\xaf\x27\x1c" + bytes(20), "材料.7z", "7z"),
    (png(1), "证书.png", "png"),
    (b"\xff\xd8\xff\xe0" + bytes(20), "证书.jpeg", "jpeg"),
    (b"MZ\x90\x00" + bytes(60), "教案.docx", None),  # a program is no document
    (b"<html><script>alert(1)</script>", "教案.doc", None),
    (b"", "空.pdf", None),
])
def test_a_file_is_typed_by_its_bytes(data: bytes, name: str, ext: str | None) -> None:
    assert sniff_document(data, name) == ext


@pytest.fixture
async def programme(db: Any, clock: FakeClock) -> Any:
    clock.now = local(2023, 3, 15, 9)
    text = (DATA / "seed_003_spring.toml").read_text(encoding="utf-8")
    await seed(db, text, clock.now, roster=DATA / "seed_roster.csv")
    return db


@pytest.fixture
async def chat(aiohttp_client: Any, config: Any, clock: FakeClock, programme: Any) -> SimChat:
    return SimChat(await aiohttp_client(create_app(config, clock=clock)))


async def stored(db: Any) -> list[tuple[str, str, str, str, str]]:
    """(task key, owner, sender, name, ext) of every stored document, in order."""
    async with db.sessions() as s:
        rows = await s.execute(select(Task.key, FileSubmission.owner, Person.name,
                                      FileSubmission.name, FileSubmission.ext)
                               .join(Task, Task.id == FileSubmission.task_id)
                               .join(Person, Person.id == FileSubmission.person_id)
                               .order_by(FileSubmission.id))
        return [tuple(r) for r in rows]


async def test_a_lesson_plan_and_slides_fulfil_the_tuimen_task(chat: SimChat, programme,
                                                                 config) -> None:
    lesson = office("docx", "李秀英的教案")
    first = await chat.say("李秀英", "", school=None, file=("推门听课教案.docx", lesson))
    assert "已收到第 1/2 个文件" in first and "「推门听课教案.docx」" in first
    assert "“推门听课”活动教案和课件" in first and "还差 1 个" in first and "4月30日 17:00" in first
    again = await chat.say("李秀英", "", school=None, file=("教案（再发一次）推门听课.docx", lesson))
    assert "之前已经收到过" in again and "1/2" in again and "已收到第" not in again
    last = await chat.say("李秀英", "", school=None,
                          file=("推门听课课件.pptx", office("pptx", "李秀英的课件")))
    assert "已收到第 2/2 个文件" in last and "已交齐" in last

    rows = await stored(programme)
    assert [(r[0], r[2], r[4]) for r in rows] == [("tuimen-lesson", "李秀英", "docx"),
                                                  ("tuimen-lesson", "李秀英", "pptx")]
    assert rows[0][1].startswith("p:")
    files_dir = chat.client.server.app[SERVICES].files_dir
    assert list((files_dir / "documents").rglob("*.docx"))[0].read_bytes() == lesson
    progress = await chat.say("李秀英", "进度")
    assert "2/2" in progress


async def test_an_unnamed_file_with_two_tasks_open_is_kept_nowhere_until_chosen(
        chat: SimChat, programme) -> None:
    reply = await chat.say("李秀英", "", school=None, file=("扫描件.pdf", pdf("证书")))
    assert "2 项材料要交" in reply and "没有保存" in reply
    assert "文件 推门听课" in reply and "文件 寒假研修" in reply
    assert await stored(programme) == []

    chosen = await chat.say("李秀英", "文件 寒假研修", school=None)
    assert "10 分钟内" in chosen and "电子证书" in chosen and "0/1" in chosen
    done = await chat.say("李秀英", "", school=None, file=("扫描件.pdf", pdf("证书")))
    assert "已收到第 1/1 个文件" in done and "已交齐" in done
    assert [r[0] for r in await stored(programme)] == ["hanjia-certificate"]
    # 确认 has nothing to carry out: choosing a task is not a request
    assert "没有需要您确认" in await chat.say("李秀英", "确认", school=None)


async def test_the_choice_lasts_ten_minutes(chat: SimChat, programme, clock: FakeClock) -> None:
    await chat.say("李秀英", "文件 寒假研修", school=None)
    clock.advance(minutes=11)
    reply = await chat.say("李秀英", "", school=None, file=("扫描件.pdf", pdf()))
    assert "没有保存" in reply and await stored(programme) == []


async def test_a_wrong_kind_of_file_is_refused_and_nothing_is_kept(chat: SimChat, programme) -> None:
    program = await chat.say("李秀英", "", school=None,
                             file=("推门听课教案.docx", b"MZ\x90\x00" + bytes(200)))
    assert "不是文档" in program and "没有保存" in program
    await chat.say("李秀英", "文件 寒假研修", school=None)
    slides = await chat.say("李秀英", "", school=None, file=("证书.pptx", office("pptx")))
    assert "不是" in slides and "要的文件类型" in slides and "PDF、图片" in slides
    assert await stored(programme) == []
    files_dir = chat.client.server.app[SERVICES].files_dir
    assert not (files_dir / "documents").exists()


async def test_a_file_over_the_limit_is_refused(chat: SimChat, programme) -> None:
    chat.client.server.app[SERVICES].max_file_bytes = 1024
    reply = await chat.say("李秀英", "", school=None,
                           file=("推门听课教案.docx", office("docx", "长" * 2000)))
    assert "超过" in reply and "没有保存" in reply and await stored(programme) == []


async def test_school_material_counts_for_the_school_once(chat: SimChat, programme) -> None:
    summary = office("docx", "一小的期末总结")
    first = await chat.say("王丽华", "", school=None, file=("研培工作期末总结.docx", summary))
    assert "已收到第 1/1 个文件" in first and "材料8" in first and "本校已交齐" in first
    again = await chat.say("王丽华", "", school=None, file=("期末总结（研培工作）.docx", summary))
    assert "之前已经收到过" in again
    rows = await stored(programme)
    assert len(rows) == 1 and rows[0][0] == "material-8" and rows[0][1].startswith("s:")
    # a 教研组长 leads a subject, not the school: the school's material is not theirs
    subject_lead = await chat.say("张明", "", school=None, file=("研培工作期末总结.docx", summary))
    assert "材料8" not in subject_lead and "没有保存" in subject_lead
    # a teacher does not hand in the school's material: it is not among their tasks
    teacher = await chat.say("李秀英", "", school=None, file=("研培工作期末总结.docx", summary))
    assert "材料8" not in teacher and "没有保存" in teacher
    assert len(await stored(programme)) == 1


async def test_subject_material_counts_for_the_leads_subject(chat: SimChat, programme) -> None:
    archive = plain_zip("第一次推门听课")
    reply = await chat.say("张明", "文件 材料6", school=None)
    assert "算作「材料6：校级推门听课材料（小学11次" in reply
    stored_reply = await chat.say("张明", "", school=None, file=("第一次.zip", archive))
    assert "已收到第 1/11 个文件" in stored_reply
    [row] = await stored(programme)
    assert row[0] == "material-6-primary" and row[1].endswith(":数学")


async def test_a_platform_file_is_fetched_after_the_ack(aiohttp_client, config, clock,
                                                        programme) -> None:
    app = create_app(config, clock=clock)
    client = await aiohttp_client(app)
    services = client.server.app[SERVICES]
    fetcher, replier = FakeFetcher({"code-doc": [office("docx", "钉钉")]}), FakeReplier()
    services.fetchers["dingtalk"], services.repliers["dingtalk"] = fetcher, replier
    downloader = client.server.app[DOWNLOADER]
    await downloader.stop()
    route = {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=FAKE"}
    msg = IncomingMessage("dingtalk", "msg-file-1", "cid-dm", False, "dt-lixiuying", "李秀英", "",
                          datetime.now().astimezone(), (), None, route,
                          (ImageRef("code-doc", name="推门听课教案.docx"),))
    first = await dispatch(services, msg)
    assert first.reply is None  # answered once it is stored
    async with programme.sessions() as s:
        [row] = (await s.scalars(select(PendingDownload))).all()
        assert (row.kind, row.name, row.state) == ("file", "推门听课教案.docx", "pending")
        assert row.owner is not None and row.owner.startswith("p:")
    again = await dispatch(services, msg)  # the platform redelivers
    assert again.duplicate and again.reply is None
    await downloader.drain()
    [(_, text)] = replier.sent
    assert "已收到第 1/2 个文件" in text.text and "推门听课教案.docx" in text.text
    rows = await stored(programme)
    assert [(r[0], r[2], r[4]) for r in rows] == [("tuimen-lesson", "李秀英", "docx")]
    async with programme.sessions() as s:
        sha = await s.scalar(select(FileSubmission.sha256))
    assert document_path(services.files_dir, sha, "docx").read_bytes() == office("docx", "钉钉")
