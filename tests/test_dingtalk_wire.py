from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.messages import ImageRef, IncomingMessage
from platforms.dingtalk import results as dr
from platforms.dingtalk import wire as dw

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "platforms" / "dingtalk"
NOW = datetime(2023, 11, 14, 22, 13, 21, tzinfo=UTC)
BASE = "https://oapi.dingtalk.com"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse_ok(payload, **kw) -> tuple[IncomingMessage, dw.DingTalkContext]:
    result = dw.parse_callback(payload, NOW, **kw)
    assert not isinstance(result, dw.ParseError), result
    return result


# ---------------------------------------------------------------- signatures


def test_doc_worked_callback_vector():
    assert (
        dw.callback_signature("1577262236757", "this is a secret")
        == "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA="
    )
    now = 1577262236757 + 1000
    assert (
        dw.verify_callback(
            "1577262236757", "DJrE6qdyVGCQz9z5r2MDuNcNAhwYnuAkyj13cx169CA=", "this is a secret", now
        )
        is None
    )


def test_http_callback_signature_fixture():
    vectors = {v["name"]: v for v in load("http_callback_signature.json")["vectors"]}
    for v in vectors.values():
        h = v["headers"]
        now = v.get("now_ms_for_test", int(h["timestamp"]) + 1)
        result = dw.verify_callback(h["timestamp"], h["sign"], v["app_secret"], now)
        if v["expect"] == "accept" or v["expect"].startswith("sign matches"):
            assert result is None, v["name"]
            assert dw.callback_signature(h["timestamp"], v["app_secret"]) == h["sign"]
    assert _vec(vectors["stale_timestamp"]) == "stale_timestamp"
    assert _vec(vectors["wrong_sign"]) == "bad_sign"


def _vec(v: dict) -> str | None:
    h = v["headers"]
    return dw.verify_callback(h["timestamp"], h["sign"], v["app_secret"], v["now_ms_for_test"])


SECRET = "FAKE-app-secret-do-not-use-0000000000000000000000000000000000"
TS = "1700000000123"
SIGN = "njcVzB6PB2erLOqUiLHW5bx1hyjzYZzoOticnQ8FeCw="


@pytest.mark.parametrize(
    ("ts", "sign", "now", "expected"),
    [
        (TS, SIGN, 1700000000123, None),
        (TS, SIGN, 1700000000123 + 3_600_000, None),  # exactly 1 h is still fine
        (TS, SIGN, 1700000000123 - 3_600_000, None),
        (TS, SIGN, 1700000000123 + 3_600_001, "stale_timestamp"),
        (TS, SIGN, 1700000000123 - 3_600_001, "stale_timestamp"),  # from the future
        (TS, "njcVzB6PB2erLOqUiLHW5bx1hyjzYZzoOticnQ8FeCx=", 1700000000123, "bad_sign"),
        (TS, SIGN.rstrip("="), 1700000000123, "bad_sign"),
        (TS, "njcVzB6PB2erLOqUiLHW5bx1hyjzYZzoOticnQ8FeCw%3D", 1700000000123, "bad_sign"),
        (TS, "签名", 1700000000123, "bad_sign"),
        ("1700000000124", SIGN, 1700000000123, "bad_sign"),  # sign bound to the timestamp
        (None, SIGN, 1700000000123, "missing_headers"),
        (TS, None, 1700000000123, "missing_headers"),
        ("", SIGN, 1700000000123, "missing_headers"),
        (TS, "", 1700000000123, "missing_headers"),
        ("17000000001x3", SIGN, 1700000000123, "bad_timestamp"),
        ("-1700000000123", SIGN, 1700000000123, "bad_timestamp"),
        (" 1700000000123", SIGN, 1700000000123, "bad_timestamp"),
        ("1.7e12", SIGN, 1700000000123, "bad_timestamp"),
        ("١٧٠٠٠٠٠٠٠٠١٢٣", SIGN, 1700000000123, "bad_timestamp"),  # non-ASCII digits
        ("9" * 400, SIGN, 1700000000123, "bad_timestamp"),
    ],
)
def test_verify_callback(ts, sign, now, expected):
    assert dw.verify_callback(ts, sign, SECRET, now) == expected


def test_verify_callback_wrong_secret():
    assert dw.verify_callback(TS, SIGN, "another secret", 1700000000123) == "bad_sign"


def test_custom_robot_signed_url_fixture():
    f = load("custom_robot_signed_url.json")
    url = dw.custom_robot_signed_url(
        f["inputs"]["webhook"], f["inputs"]["secret"], int(f["inputs"]["timestamp"])
    )
    assert url == f["derived"]["signed_url"]
    assert url == f["request"]["url"]
    query = parse_qs(urlsplit(url).query)
    assert query["sign"] == [f["derived"]["sign_base64"]]
    assert query["timestamp"] == [f["inputs"]["timestamp"]]


# ---------------------------------------------------------------- parsing


def test_parse_group_text():
    msg, ctx = parse_ok(load("group_text.json"))
    assert msg == IncomingMessage(
        platform="dingtalk",
        msg_id="msgFAKE000000000000000001==",
        conversation_id="cidFAKEgroup0000000000000000000000==",
        is_group=True,
        sender_id="fake-staff-0001",
        sender_name="张老师(FAKE)",
        text="签到",
        received_at=NOW,
        reply_context={
            "session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=FAKEsession000000000000000000001",
            "session_webhook_expires_ms": 1700005400000,
            "robot_code": "dingFAKErobotcode0001",
            "conversation_id": "cidFAKEgroup0000000000000000000000==",
            "is_group": True,
            "sender_id": "fake-staff-0001",
        },
    )
    assert msg.reply_context == ctx.as_reply_context(msg)  # one shape, wherever it is built
    assert ctx == dw.DingTalkContext(
        session_webhook="https://oapi.dingtalk.com/robot/sendBySession?session=FAKEsession000000000000000000001",
        session_webhook_expires_ms=1700005400000,
        robot_code="dingFAKErobotcode0001",
        conversation_title="FAKE第一实验小学研修群",
        create_at_ms=1700000000000,
    )
    assert dw.is_allowed_origin(ctx.session_webhook, BASE)


def test_parse_private_text():
    msg, ctx = parse_ok(load("private_text.json"))
    assert (msg.is_group, msg.text, msg.msg_id, msg.images, msg.unsupported) == (
        False,
        "我的进度",
        "msgFAKE000000000000000002==",
        (),
        None,
    )
    assert msg.conversation_id == "cidFAKEprivate00000000000000000001=="
    assert ctx.conversation_title is None
    assert ctx.session_webhook_expires_ms == 1700005460000


def test_parse_picture():
    msg, ctx = parse_ok(load("picture.json"))
    assert msg.images == (ImageRef(ref="FAKEdownloadCode/picture+0001=="),)
    assert msg.text == "" and msg.unsupported is None and not msg.is_group
    assert msg.msg_id == "msgFAKE000000000000000003=="
    assert ctx.robot_code == "dingFAKErobotcode0001"


def test_parse_richtext():
    msg, _ = parse_ok(load("richtext.json"))
    assert msg.is_group
    assert msg.text == "今天听课的照片\n初二(3)班 数学"
    assert msg.images == (ImageRef(ref="FAKEdownloadCode/rich+0001=="),)
    msg2, _ = parse_ok(load("richtext.json"), robot_names=["研修助手"])
    assert msg2.text == "今天听课的照片\n初二(3)班 数学"


def test_a_rich_text_item_with_a_download_code_and_no_type_is_a_picture():
    p = load("richtext.json")
    p["content"]["richText"][1].pop("type")  # the SDK's get_image_list needs no type
    p["content"]["richText"].append({"type": "video", "downloadCode": "FAKEvideo"})
    msg, _ = parse_ok(p)
    assert msg.images == (ImageRef(ref="FAKEdownloadCode/rich+0001=="),)
    assert msg.text == "今天听课的照片\n初二(3)班 数学"


@pytest.mark.parametrize(("key", "cap"), [("msgId", dw.MAX_MSG_ID_CHARS),
                                          ("conversationId", dw.MAX_CONVERSATION_ID_CHARS),
                                          ("senderStaffId", dw.MAX_USER_ID_CHARS)])
def test_ids_longer_than_their_cap_are_malformed(key, cap):
    p = load("group_text.json")
    p[key] = "x" * cap
    assert getattr(parse_ok(p)[0], {"msgId": "msg_id", "conversationId": "conversation_id",
                                    "senderStaffId": "sender_id"}[key]) == "x" * cap
    p[key] = "x" * (cap + 1)
    assert dw.parse_callback(p, NOW) == dw.ParseError("malformed")


def test_parse_stream_frame_data_equals_group_text():
    frame = load("stream_frames.json")["callback_frame"]
    assert parse_ok(json.loads(frame["data"])) == parse_ok(load("group_text.json"))


def test_text_robot_name_stripping_and_createat_string():
    p = load("group_text.json")
    p["text"] = {"content": " @研修助手 签到 @研修助手 "}
    p["createAt"] = "1700000000000"
    msg, ctx = parse_ok(p, robot_names=("研修助手",))
    assert msg.text == "签到"
    assert ctx.create_at_ms == 1700000000000
    p["text"] = {"content": " @李老师 签到"}  # other people's mentions are kept in text
    assert parse_ok(p, robot_names=("研修助手",))[0].text == "@李老师 签到"


def test_top_level_content_variant():
    p = load("group_text.json")
    del p["text"]
    p["content"] = " 你好"
    assert parse_ok(p)[0].text == "你好"


@pytest.mark.parametrize(
    ("msgtype", "content", "expected"),
    [
        ("audio", {"downloadCode": "x", "duration": 4000}, "audio"),  # no speech-to-text
        ("video", {"downloadCode": "x", "duration": "5", "videoType": "mp4"}, "video"),
        (
            "unknownMsgType",
            {"unknownMsgType": "用户发送了一条消息，机器人暂不支持接收。"},
            "unknown",
        ),
        ("interactiveCard", {}, "unknown"),
    ],
)
def test_unsupported_kinds(msgtype, content, expected):
    p = load("private_text.json")
    del p["text"]
    p.update(msgtype=msgtype, content=content)
    msg, _ = parse_ok(p)
    assert msg.unsupported == expected
    assert msg.text == "" and msg.images == ()


def test_a_file_in_a_one_to_one_chat_is_a_document_to_fetch():
    """§1.3: `file` carries a downloadCode (fetched as a picture is, §4) and the file's name."""
    p = load("private_text.json")
    del p["text"]
    p.update(msgtype="file", content={"downloadCode": "DL-FILE", "fileName": "推门听课教案.docx",
                                      "spaceId": "1", "fileId": "2"})
    msg, _ = parse_ok(p)
    assert msg.unsupported is None and msg.images == () and msg.text == ""
    assert msg.files == (ImageRef(ref="DL-FILE", name="推门听课教案.docx"),)
    p["content"] = {"downloadCode": "DL-FILE", "fileName": "长" * 500 + ".docx"}
    assert len(parse_ok(p)[0].files[0].name) == dw.MAX_FILE_NAME_CHARS
    p["content"] = {"fileName": "x.pdf"}  # no downloadCode: nothing to fetch
    assert isinstance(dw.parse_callback(p, NOW), dw.ParseError)


def test_an_audio_message_with_recognition_is_its_text_marked_spoken():
    p = load("private_text.json")
    del p["text"]
    p.update(msgtype="audio", content={"downloadCode": "x", "duration": 4000,
                                       "recognition": " 反思，今天的课堂很投入。 "})
    msg, _ = parse_ok(p)
    assert (msg.text, msg.spoken, msg.unsupported, msg.images) == ("反思，今天的课堂很投入。", True, None, ())


@pytest.mark.parametrize("recognition", [None, "", "  ", 42, ["签到"]])
def test_an_audio_message_without_usable_recognition_is_unsupported(recognition):
    p = load("private_text.json")
    del p["text"]
    content = {"downloadCode": "x", "duration": 4000}
    if recognition is not None:
        content["recognition"] = recognition
    p.update(msgtype="audio", content=content)
    msg, _ = parse_ok(p)
    assert (msg.text, msg.spoken, msg.unsupported) == ("", False, "audio")


def test_a_typed_message_is_not_spoken():
    assert parse_ok(load("private_text.json"))[0].spoken is False


@pytest.mark.parametrize("key", ["errorCode", "errCode"])
@pytest.mark.parametrize("value", [20001, "20001"])
def test_quota_paused(key, value):
    p = load("group_text.json")
    del p["text"]
    p[key] = value
    p["errorMessage"] = "机器人消息服务已暂停"
    assert dw.parse_callback(p, NOW) == dw.ParseError("quota_paused")


def test_no_staff_id():
    for value in ("", None):
        p = load("group_text.json")
        p["senderStaffId"] = value
        assert dw.parse_callback(p, NOW) == dw.ParseError("no_staff_id")
    p = load("group_text.json")
    del p["senderStaffId"]
    assert dw.parse_callback(p, NOW) == dw.ParseError("no_staff_id")


def _mutations():
    base = load("group_text.json")
    rich = load("richtext.json")
    pic = load("picture.json")

    def m(src, **changes):
        p = copy.deepcopy(src)
        for k, v in changes.items():
            if v is KeyError:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    return [
        [base],
        "not a dict",
        None,
        42,
        m(base, msgId=KeyError),
        m(base, msgId=""),
        m(base, msgId=123),
        m(base, msgtype=KeyError),
        m(base, msgtype=["text"]),
        m(base, text="签到"),
        m(base, text={"content": 5}),
        m(base, text=None),
        m(base, conversationId=KeyError),
        m(base, conversationType=2.0),
        m(base, conversationType="3"),
        m(base, conversationType=True),
        m(base, conversationType=["2"]),
        m(base, senderStaffId=["fake"]),
        m(base, senderNick={"a": 1}),
        m(base, sessionWebhook=1),
        m(base, conversationTitle=[]),
        m(pic, content="FAKEdownloadCode"),
        m(pic, content={"downloadCode": 7}),
        m(pic, content={"pictureDownloadCode": "only"}),
        m(rich, content={"richText": "text"}),
        m(rich, content={"richText": ["text"]}),
        m(rich, content=[{"richText": []}]),
        m(rich, content={"richText": [{"type": "picture", "downloadCode": None}]}),
    ]


@pytest.mark.parametrize("payload", _mutations())
def test_malformed_payloads(payload):
    assert dw.parse_callback(payload, NOW) == dw.ParseError("malformed")


def test_lenient_optional_fields():
    p = load("group_text.json")
    p.update(createAt={"x": 1}, sessionWebhookExpiredTime="soon", conversationType=2)
    msg, ctx = parse_ok(p)
    assert msg.is_group and ctx.create_at_ms is None and ctx.session_webhook_expires_ms is None


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=6)
    ),
    max_leaves=30,
)
KEYS = [
    "msgId", "msgtype", "conversationId", "conversationType", "senderStaffId", "senderNick",
    "text", "content", "createAt", "sessionWebhook", "sessionWebhookExpiredTime", "robotCode",
    "conversationTitle", "errorCode", "errCode", "richText", "downloadCode", "type",
]  # fmt: skip
field_values = json_like | st.sampled_from(
    ["text", "picture", "richText", "audio", "1", "2", "20001", "x", " @a b", ""]
)
near_payloads = st.dictionaries(st.sampled_from(KEYS), field_values, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_like, near_payloads))
def test_parse_never_raises(payload):
    result = dw.parse_callback(payload, NOW)
    assert isinstance(result, dw.ParseError | tuple)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["text", "picture", "richText"]),
    st.sampled_from(["text", "content"]),
    json_like,
)
def test_parse_never_raises_on_mutated_fixture(msgtype, key, value):
    p = load("richtext.json")
    p["msgtype"] = msgtype
    p[key] = value
    result = dw.parse_callback(p, NOW)
    assert isinstance(result, dw.ParseError | tuple)


# ---------------------------------------------------------------- origin


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://oapi.dingtalk.com/robot/sendBySession?session=abc", True),
        ("https://OAPI.dingtalk.com/robot/sendBySession?session=abc", True),
        ("https://oapi.dingtalk.com:443/robot/sendBySession?session=abc", True),
        ("https://oapi.dingtalk.com.evil.example/robot/sendBySession", False),
        ("https://evil.example/oapi.dingtalk.com/robot", False),
        ("https://evil-oapi.dingtalk.com/robot", False),
        ("https://api.dingtalk.com/v1.0/robot", False),
        ("http://oapi.dingtalk.com/robot/sendBySession?session=abc", False),
        ("https://oapi.dingtalk.com:8443/robot", False),
        ("https://oapi.dingtalk.com@evil.example/robot", False),
        ("https://user:pw@oapi.dingtalk.com/robot", False),
        ("https://oapi.dingtalk.com\\@evil.example/robot", False),
        ("https://evil.example\\.oapi.dingtalk.com/robot", False),
        ("https://oapi.dingtalk.com\t.evil.example/", False),
        ("https://oapi.dingtalk.com:notaport/", False),
        ("//oapi.dingtalk.com/robot", False),
        ("oapi.dingtalk.com/robot", False),
        ("ftp://oapi.dingtalk.com/robot", False),
        ("", False),
        (None, False),
    ],
)
def test_is_allowed_origin(url, ok):
    assert dw.is_allowed_origin(url, BASE) is ok


# ---------------------------------------------------------------- outgoing bodies


def test_markdown_body_matches_fixture():
    f = load("reply_markdown.json")
    assert dw.markdown_body(f["markdown"]["title"], f["markdown"]["text"], ["fake-staff-0001"]) == f


def test_text_body_matches_custom_robot_request():
    req = load("custom_robot_signed_url.json")["request"]["body"]
    assert dw.text_body(req["text"]["content"], msg_uuid="fake-outbox-000001") == req


def test_text_body_inserts_mention_tokens():
    body = dw.text_body("已签到", at_user_ids=["u1", "u1", "u2"], at_mobiles=["13800000000"])
    assert body["text"]["content"] == "已签到 @u1 @u2 @13800000000"
    assert body["at"] == {"atUserIds": ["u1", "u2"], "atMobiles": ["13800000000"], "isAtAll": False}
    assert dw.text_body("@u1 好")["text"]["content"] == "@u1 好"
    many = dw.markdown_body("t", "x", [f"u{i}" for i in range(80)])
    assert len(many["at"]["atUserIds"]) == dw.MAX_AT_USERS


def test_group_send_body_matches_fixture():
    f = load("group_send_api.json")
    req = f["group_request"]["body"]
    param = json.loads(req["msgParam"])
    body = dw.group_send_body(
        req["robotCode"], req["openConversationId"], param["text"], markdown_title=param["title"]
    )
    assert body == req
    oto = f["oto_request"]["body"]
    text = json.loads(oto["msgParam"])["content"]
    assert dw.oto_send_body(oto["robotCode"], oto["userIds"], text) == oto
    plain = dw.group_send_body("r", "cid", "你好")
    assert plain["msgKey"] == "sampleText"
    assert isinstance(plain["msgParam"], str) and json.loads(plain["msgParam"]) == {
        "content": "你好"
    }
    with pytest.raises(ValueError):
        dw.oto_send_body("r", [f"u{i}" for i in range(21)], "x")


def test_empty_reply_body():
    assert dw.empty_reply_body() == {"msgtype": "empty"}


# ---------------------------------------------------------------- send results

CUSTOM = load("custom_robot_signed_url.json")["responses"]
API_ERRORS = load("group_send_api.json")["error_examples"]


@pytest.mark.parametrize(
    ("status", "body", "kind", "after", "reason"),
    [
        (200, CUSTOM["ok"], "ok", None, "ok"),
        (200, {"errcode": "0", "errmsg": "ok"}, "ok", None, "ok"),
        (200, {"processQueryKey": "FAKE"}, "ok", None, "ok"),
        (200, CUSTOM["throttled_documented"], "retry", 600.0, "throttled"),
        (200, CUSTOM["throttled_observed_legacy"], "retry", 600.0, "throttled"),
        (200, {"errcode": "410100"}, "retry", 600.0, "throttled"),
        (200, {"errcode": -1, "errmsg": "系统繁忙"}, "retry", None, "system_busy"),
        (200, {"errcode": 90018}, "retry", 1.0, "qps_limit_app"),
        (200, CUSTOM["bad_sign"], "give_up", None, "security_sign"),
        (200, CUSTOM["bad_timestamp"], "give_up", None, "security_timestamp"),
        (200, CUSTOM["keyword_missing"], "give_up", None, "security_keyword"),
        (200, {"errcode": 310000, "errmsg": "ip 1.2.3.4 not in whitelist"}, "give_up", None,
         "security_ip"),
        (200, {"errcode": 310000, "errmsg": "机器人发送签名不匹配"}, "give_up", None,
         "security_sign"),
        (200, {"errcode": 310000}, "give_up", None, "security_check_failed"),
        (200, {"errcode": 300001, "errmsg": "token is not exist"}, "give_up", None,
         "token_invalid"),
        (200, {"errcode": 400101}, "give_up", None, "token_not_found"),
        (200, {"errcode": 400013}, "give_up", None, "group_dissolved"),
        (200, {"errcode": 430102}, "give_up", None, "content_rejected"),
        (200, CUSTOM["too_long_observed"], "give_up", None, "message_too_long"),
        (200, {"errcode": 123456}, "give_up", None, "errcode_123456"),
        (200, {"errcode": "ok?"}, "give_up", None, "bad_errcode"),
        (500, None, "retry", None, "server_error"),
        (502, {"errcode": 123456}, "retry", None, "errcode_123456"),
        (503, {"code": "whatever"}, "retry", None, "server_error"),
        (500, {"code": "system.error", "message": "x"}, "retry", None, "system_error"),
        (200, None, "retry", None, "unparseable_response"),
        (API_ERRORS[0]["status"], API_ERRORS[0]["body"], "give_up", None,
         "api_invalidParameter.robotCode.auth"),
        (API_ERRORS[1]["status"], API_ERRORS[1]["body"], "give_up", None, "message_too_long"),
        (API_ERRORS[2]["status"], API_ERRORS[2]["body"], "retry", 1.0, "qps_limit_app"),
        (403, {"code": "Forbidden.AccessDenied.QpsLimitForApi"}, "retry", None, "qps_limit_api"),
        (403, {"code": "Forbidden.AccessDenied.ApiCountLimitForOrg"}, "give_up", None,
         "monthly_api_quota"),
        (400, {"code": "send.too.fast"}, "retry", 60.0, "throttled"),
        (429, {"code": "Throttling.User"}, "retry", None, "throttled"),
        (403, {"code": "Throttling.Api"}, "retry", 60.0, "throttled"),
        (400, {"code": "session.expired"}, "give_up", None, "session_expired"),
        (401, {"code": "InvalidAuthentication"}, "retry", None, "unauthorized"),
        (404, None, "give_up", None, "http_404"),
        (200, {"status": 1111, "wait": 5, "punish": "deny"}, "retry", 300.0, "ip_banned"),
    ],
)  # fmt: skip
def test_classify_send_result(status, body, kind, after, reason):
    assert dr.classify_send_result(status, body) == dr.SendOutcome(kind, after, reason)


@pytest.mark.parametrize(
    "body",
    [
        {"code": "https://evil.example/?access_token=SECRET", "message": "x"},
        {"code": "bad token FAKEaccessToken0000000000000000000"},
        {"errcode": 310000, "errmsg": "sign not match for SECfake000 https://x"},
        {"errcode": 999, "errmsg": "https://oapi.dingtalk.com/robot/send?access_token=T0KEN"},
    ],
)
def test_reasons_never_leak(body):
    reason = dr.classify_send_result(400, body).reason
    for bad in ("http", "://", "token", "SEC", "T0KEN", " "):
        assert bad not in reason, reason


def test_target_gone_reasons_are_give_up():
    for outcome in dr.ERRCODE_TABLE.values():
        if outcome.reason in dr.TARGET_GONE_REASONS:
            assert outcome.kind == "give_up"


# ---------------------------------------------------------------- replies


def test_reply_body_for_text_markdown_and_nothing():
    from kernel.messages import OutgoingText

    assert dw.reply_body(None) == {"msgtype": "empty"}
    assert dw.reply_body(OutgoingText("")) == {"msgtype": "empty"}
    assert dw.reply_body(OutgoingText("已签到", mentions=("u1",))) == dw.text_body("已签到", ["u1"])
    f = load("reply_markdown.json")
    out = OutgoingText(f["markdown"]["text"], markdown=True, title=f["markdown"]["title"],
                       mentions=("fake-staff-0001",))
    assert dw.reply_body(out) == f


def test_markdown_body_can_mention_by_mobile():
    body = dw.markdown_body("t", "x", ["u1"], at_mobiles=["13800000000"])
    assert body["markdown"]["text"] == "x @u1 @13800000000"
    assert body["at"] == {"atUserIds": ["u1"], "atMobiles": ["13800000000"], "isAtAll": False}


def test_a_session_webhook_is_used_only_on_the_origin_and_before_expiry():
    url = load("group_text.json")["sessionWebhook"]
    expires = 1700005400000
    assert dw.usable_session_webhook(url, expires, BASE, expires - 120_000) == url
    assert dw.usable_session_webhook(url, str(expires), BASE, expires - 120_000) == url
    assert dw.usable_session_webhook(url, expires, BASE, expires - 30_000) is None  # about to expire
    assert dw.usable_session_webhook(url, None, BASE, 0) is None
    assert dw.usable_session_webhook(url, expires, "https://example.invalid", 0) is None
    assert dw.usable_session_webhook(42, expires, BASE, 0) is None


def test_reply_context_is_plain_json():
    msg, ctx = parse_ok(load("picture.json"))
    route = ctx.as_reply_context(msg)
    assert json.loads(json.dumps(route)) == route
    assert route["sender_id"] == "fake-staff-0001" and route["is_group"] is False
