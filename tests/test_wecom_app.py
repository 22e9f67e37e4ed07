"""Teachers talk 1:1 to the WeCom self-built app (自建应用): encrypted XML in, message/send out."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.app import DOWNLOADER, create_app
from kernel.messages import ImageRef
from kernel.outbound import FetchError
from platforms.wecom import wire as wire
from platforms.wecom.adapter import ADAPTER
from storage.models import Checkin, Inbound, PendingDownload
from tests.conftest import FakeClock
from tests.conftest import count_rows as count
from tests.wecom_fake import CORP_ID, PNG, VECTOR, WX, FakeWeCom, Signer, app_text_xml, wecom_config


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeWeCom:
    fake = FakeWeCom()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def app(aiohttp_client: Any, tmp_path: Any, db_url: str, clock: FakeClock, seeded: Any,
              fake: FakeWeCom) -> Any:
    return await aiohttp_client(create_app(wecom_config(tmp_path, db_url, fake.base), clock=clock))


signer = Signer(receive_id=CORP_ID)  # a self-built app's receiveid is the corpid


async def say(app: Any, userid: str, text: str, msg_id: str) -> Any:
    query, body = signer.app(app_text_xml(userid, text, msg_id))
    return await app.post(f"/wecom/callback{query}", data=body, headers={"Content-Type": "text/xml"})


async def test_url_verification_with_the_shared_vector(app: Any) -> None:
    v = VECTOR["url_verification"]
    query = f"?msg_signature={v['msg_signature']}&timestamp=1700000000&nonce=fakenonce1234"
    resp = await app.get(f"/wecom/callback{query}", params={"echostr": v["echostr"]})
    assert resp.status == 200 and await resp.text() == v["echostr_plaintext"]


async def test_the_vector_callback_from_an_unknown_sender_gets_whom_to_ask(app: Any,
                                                                         fake: FakeWeCom) -> None:
    body = (WX / "app_encrypted_post_body.xml").read_bytes()
    resp = await app.post(f"/wecom/callback{VECTOR['app_callback_text']['post_query']}", data=body)
    assert resp.status == 200 and await resp.text() == ""
    assert [s["touser"] for s in fake.sends] == ["fake.teacher.zhangsan"]
    assert "花名册里还没有您" in fake.sends[0]["text"]["content"]


async def test_a_teacher_asks_for_progress_and_gets_it_through_message_send(
        app: Any, fake: FakeWeCom, seeded: Any) -> None:
    resp = await say(app, "wx-zhangming", "进度", "7000000000000000101")
    assert resp.status == 200 and await resp.text() == ""
    assert len(fake.sends) == 1  # sent before the callback was answered
    sent = fake.sends[0]
    assert sent["touser"] == "wx-zhangming" and sent["agentid"] == 1000002
    assert "签到：" in sent["text"]["content"] and "学时：" in sent["text"]["content"]
    assert fake.send_tokens == [fake.valid_token] and fake.token_requests == 1


async def test_the_access_token_is_cached_and_refetched_when_wecom_expires_it(
        app: Any, fake: FakeWeCom, seeded: Any) -> None:
    await say(app, "wx-zhangming", "签到", "7000000000000000201")
    await say(app, "wx-lixiuying", "签到", "7000000000000000202")
    assert fake.token_requests == 1 and len(fake.sends) == 2
    fake.expire_token()  # the next message/send answers 42001
    await say(app, "wx-wanglihua", "签到", "7000000000000000203")
    assert fake.token_requests == 2 and len(fake.sends) == 3
    assert fake.send_tokens[-2] != fake.send_tokens[-1] == fake.valid_token
    assert await count(seeded, Checkin) == 3


async def test_a_redelivered_msg_id_is_stored_and_answered_once(app: Any, fake: FakeWeCom,
                                                               seeded: Any) -> None:
    for _ in range(3):  # WeCom retries up to 3 times
        resp = await say(app, "wx-zhangming", "签到", "7000000000000000301")
        assert resp.status == 200
    assert await count(seeded, Checkin) == 1
    assert await count(seeded, Inbound) == 1
    assert len(fake.sends) == 1 and "签到成功" in fake.sends[0]["text"]["content"]


async def test_forged_or_broken_callbacks_are_rejected_and_nothing_is_stored(
        app: Any, fake: FakeWeCom, seeded: Any) -> None:
    query, body = signer.app(app_text_xml("wx-zhangming", "签到", "7000000000000000401"))
    url = "/wecom/callback"
    forged = query.replace("msg_signature=", "msg_signature=0")
    assert (await app.post(f"{url}{forged}", data=body)).status == 401
    other_corp = Signer(receive_id="wwOTHERCORP0000001").app(
        app_text_xml("wx-zhangming", "签到", "7000000000000000402"))
    assert (await app.post(f"{url}{other_corp[0]}", data=other_corp[1])).status == 403
    encrypted = body.decode().split("<![CDATA[")[2].split("]]>")[0]
    short = encrypted[:88]
    truncated = body.decode().replace(encrypted, short).encode()
    assert (await app.post(f"{url}{signer.query(short)}", data=truncated)).status == 400
    for bad in (b"<xml><Encrypt></Encrypt></xml>", b"not xml",
                b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>'):
        assert (await app.post(f"{url}{query}", data=bad)).status == 400
    no_msg_id = signer.app(app_text_xml("wx-zhangming", "签到", "").replace("<MsgId></MsgId>", ""))
    assert (await app.post(f"{url}{no_msg_id[0]}", data=no_msg_id[1])).status == 400
    assert (await app.post(f"{url}{query}", data=b"<" * (1024 * 1024 + 1))).status == 413
    assert await count(seeded, Inbound) == 0 and await count(seeded, Checkin) == 0
    assert fake.sends == [] and fake.token_requests == 0


@pytest.mark.parametrize("field", ["MsgId", "FromUserName"])
async def test_an_oversized_msg_id_or_sender_is_refused_and_nothing_is_stored(
        app: Any, fake: FakeWeCom, seeded: Any, field: str) -> None:
    huge = "7" * 100_000
    xml = app_text_xml(huge if field == "FromUserName" else "wx-zhangming", "签到",
                       huge if field == "MsgId" else "7000000000000000501")
    query, body = signer.app(xml)
    assert (await app.post(f"/wecom/callback{query}", data=body)).status == 400
    assert await count(seeded, Inbound) == 0 and await count(seeded, Checkin) == 0
    assert fake.sends == []
    longest = "7" * wire.MAX_MSG_ID  # as long as the cap: still taken
    assert (await say(app, "wx-zhangming", "签到", longest)).status == 200
    async with seeded.sessions() as s:
        checkin = await s.scalar(select(Checkin))
    assert checkin.msg_id == f"app:{longest}" and "签到成功" in fake.sends[0]["text"]["content"]


@pytest.mark.parametrize(("text_type", "image_type"), [("TEXT", "Image"), ("Text", "IMAGE")])
async def test_a_message_type_in_capitals_is_taken_like_lower_case(
        app: Any, fake: FakeWeCom, seeded: Any, text_type: str, image_type: str) -> None:
    xml = app_text_xml("wx-zhangming", "签到", "7000000000000000601")
    query, body = signer.app(xml.replace("<![CDATA[text]]>", f"<![CDATA[{text_type}]]>"))
    assert (await app.post(f"/wecom/callback{query}", data=body)).status == 200
    assert await count(seeded, Checkin) == 1 and "签到成功" in fake.sends[0]["text"]["content"]
    image = (WX / "app_image_message.xml").read_text("utf-8").replace(
        "fake.teacher.zhangsan", "wx-zhangming").replace("<![CDATA[image]]>",
                                                         f"<![CDATA[{image_type}]]>")
    query, body = signer.app(image)
    assert (await app.post(f"/wecom/callback{query}", data=body)).status == 200
    async with seeded.sessions() as s:
        pending = await s.scalar(select(PendingDownload))
    assert pending.ref.startswith("media:")  # taken as a picture, answered once it is stored


def app_voice_xml(userid: str, msg_id: str, recognition: str | None) -> str:
    """A self-built app's voice message; Recognition only when speech-to-text is on."""
    heard = f"<Recognition><![CDATA[{recognition}]]></Recognition>" if recognition is not None else ""
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{userid}]]>"
            f"</FromUserName><CreateTime>1678154100</CreateTime><MsgType><![CDATA[voice]]></MsgType>"
            f"<MediaId><![CDATA[MEDIA-VOICE-1]]></MediaId><Format><![CDATA[amr]]></Format>{heard}"
            f"<MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>")


def test_an_app_voice_message_is_its_recognition_marked_spoken() -> None:
    from datetime import UTC, datetime

    now = datetime(2023, 3, 7, 2, tzinfo=UTC)
    msg = wire.parse_app_xml(app_voice_xml("wx-zhangming", "1", "签到").encode(), now)
    assert (msg.text, msg.spoken, msg.unsupported) == ("签到", True, None)
    for missing in (None, "", "  "):
        msg = wire.parse_app_xml(app_voice_xml("wx-zhangming", "2", missing).encode(), now)
        assert (msg.text, msg.spoken, msg.unsupported) == ("", False, "audio")


async def test_a_spoken_check_in_through_the_app_checks_in_and_silence_says_how_to_type(
        app: Any, fake: FakeWeCom, seeded: Any) -> None:
    query, body = signer.app(app_voice_xml("wx-zhangming", "7000000000000000701", "签到"))
    assert (await app.post(f"/wecom/callback{query}", data=body)).status == 200
    assert await count(seeded, Checkin) == 1 and "签到成功" in fake.sends[0]["text"]["content"]
    query, body = signer.app(app_voice_xml("wx-zhangming", "7000000000000000702", None))
    assert (await app.post(f"/wecom/callback{query}", data=body)).status == 200
    assert "这条语音没有转成文字" in fake.sends[1]["text"]["content"]
    assert await count(seeded, Checkin) == 1


async def test_events_are_acknowledged_without_a_record(app: Any, fake: FakeWeCom,
                                                        seeded: Any) -> None:
    event = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[wx-zhangming]]>"
             "</FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType>"
             "<Event><![CDATA[enter_agent]]></Event><AgentID>1000002</AgentID></xml>")
    query, body = signer.app(event)
    resp = await app.post(f"/wecom/callback{query}", data=body)
    assert resp.status == 200 and await resp.text() == ""
    assert await count(seeded, Inbound) == 0 and fake.sends == []


async def test_an_image_is_fetched_with_media_get(app: Any, fake: FakeWeCom, seeded: Any) -> None:
    xml = (WX / "app_image_message.xml").read_text("utf-8").replace(
        "fake.teacher.zhangsan", "wx-zhangming")
    media_id = "FAKE_MEDIA_ID_3day_0000000000000000000000000001"
    fake.media[media_id] = PNG
    query, body = signer.app(xml)
    assert (await app.post(f"/wecom/callback{query}", data=body)).status == 200
    assert fake.sends == []  # one visible reply per photo: the one once it is stored
    async with seeded.sessions() as s:
        pending = await s.scalar(select(PendingDownload))
    assert pending.ref == f"media:{media_id}"
    assert pending.reply_route == {"via": "app", "touser": "wx-zhangming"}

    fetcher = app.server.app[ADAPTER].fetcher
    assert await fetcher.fetch(ImageRef(pending.ref)) == PNG
    await app.server.app[DOWNLOADER].drain()
    assert "已收到第 1/3 张" in fake.sends[-1]["text"]["content"] and len(fake.sends) == 1
    missing = await fetcher.fetch(ImageRef("media:NOPE"))
    assert isinstance(missing, FetchError) and not missing.retry and "40007" in missing.reason


async def test_a_long_reply_goes_out_in_parts_cut_at_line_ends(app: Any, fake: FakeWeCom) -> None:
    from kernel.messages import OutgoingText

    lines = [f"第{i}位老师：三月研修心得未提交，照片 0/3 张。" for i in range(60)]
    outcome = await app.server.app[ADAPTER].replier.reply(
        {"via": "app", "touser": "wx-wanglihua"}, OutgoingText("\n".join(lines)))
    assert outcome.kind == "ok" and len(fake.sends) > 1
    contents = [s["text"]["content"] for s in fake.sends]
    assert all(len(c.encode()) <= 2048 for c in contents)
    assert "\n".join(contents).split("\n") == lines
