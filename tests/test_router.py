"""What phones send reaches the right verb: @mentions, full-width, 繁体, aliases, typos."""

from __future__ import annotations

import pytest

from handlers.registry import VERBS, parse_command
from tests.conftest import SimChat


@pytest.mark.parametrize("text", [
    "@研修助手 签到",
    "签到 @研修助手",
    "@研修助手 签到 @研修助手",
    "签到@研修助手",
    " 签到",  # DingTalk removes the @robot and leaves a space
    "@研修助手\u2005签到",  # DingTalk puts U+2005 after a mention
    "@王老师\u2005@研修助手\u2005签到\u2005",
    "＠研修助手　签到！",  # full-width @, ideographic space, full-width !
    "@研修助手  签到  。",
    "\u200b签到\u200b",
    "簽到",
    "打卡",
    "到",
    "签道",  # one character off
])
def test_mentions_anywhere_and_forms_of_the_check_in_verb(text: str) -> None:
    command = parse_command(text)
    assert (command.verb, command.args) == ("checkin", "")


@pytest.mark.parametrize("text,verb", [
    ("進度", "progress"), ("我的進度", "progress"), ("學時", "progress"), ("我的学时", "progress"),
    ("近度", "progress"), ("进渡", "progress"),
    ("幫助", "help"), ("？", "help"), ("ＨＥＬＰ", "help"), ("菜单", "help"),
    ("本校進度", "school_progress"), ("学校进度", "school_progress"),
    ("催交", "nudge"), ("全區進度", "district_progress"),
])
def test_verbs_without_arguments(text: str, verb: str) -> None:
    assert parse_command(f"@研修助手 {text}").verb == verb


@pytest.mark.parametrize("text,verb,args", [
    ("反思 今天很有收获", "reflection", "今天很有收获"),
    ("心得：今天很有收获", "reflection", "今天很有收获"),
    ("心得體會：今天很有收获", "reflection", "今天很有收获"),
    ("體會 今天", "reflection", "今天"),
    ("感想，今天", "reflection", "今天"),
    ("研修心得 今天", "reflection", "今天"),
    ("续写 第二段", "append", "第二段"),
    ("續寫 第二段", "append", "第二段"),
    ("接着写 第二段", "append", "第二段"),
    ("請假 明天 生病", "leave", "明天 生病"),
    ("请假明天生病", "leave", "明天生病"),
    ("请假", "leave", ""),
    ("反思 @研修助手 今天", "reflection", "今天"),  # a mention right after the verb
    ("广播 LX001,LX002 明天停课", "broadcast", "LX001,LX002 明天停课"),
])
def test_verbs_with_arguments_keep_the_text_as_typed(text: str, verb: str, args: str) -> None:
    command = parse_command(f"@研修助手 {text}")
    assert (command.verb, command.args) == (verb, args)


def test_a_reflection_keeps_its_paragraphs_and_characters() -> None:
    text = "@研修助手 反思 第一段：學生很投入。\r\n\r\n第二段　ABC，１２３。\n第三段"
    command = parse_command(text)
    assert command.verb == "reflection"
    assert command.args == "第一段：學生很投入。\n\n第二段 ABC，１２３。\n第三段"


def test_an_alias_whose_normal_form_changes_length_still_cuts_correctly() -> None:
    assert parse_command("反思㎡的面积").args == "㎡的面积"  # NFKC turns ㎡ into two characters


@pytest.mark.parametrize("text", ["今天天气怎么样", "到了吗", "签到签到签到", "反", "@研修助手 你好",
                                  "续 写", "情假 明天"])
def test_anything_else_is_unknown(text: str) -> None:
    assert parse_command(text).verb == "unknown"


@pytest.mark.parametrize("text", ["", "@研修助手", " @研修助手 ", "\u2005"])
def test_only_mentions_is_empty(text: str) -> None:
    assert parse_command(text).verb == "empty"


def test_every_alias_reaches_its_verb() -> None:
    for verb, aliases in VERBS.items():
        for alias in aliases:
            assert parse_command(f"@研修助手 {alias}").verb == verb, alias


async def test_an_unknown_message_gets_help_fitted_to_the_role(chat: SimChat) -> None:
    teacher = await chat.say("张明", "@研修助手 你好啊")
    assert teacher.startswith("没看懂「你好啊」") and "反思 <正文>" in teacher and "请假" in teacher
    assert "本校进度" not in teacher
    lead = await chat.say("王丽华", "今天开会吗")
    assert "没看懂" in lead and "本校进度" in lead and "广播" not in lead
    admin = await chat.say("钱志强", "？？", school=None)
    assert "广播" in admin and "全区进度" in admin


async def test_a_mention_only_message_gets_help(chat: SimChat) -> None:
    reply = await chat.say("张明", "@研修助手")
    assert "可以这样跟我说" in reply and "没看懂" not in reply


# ------------------------------------------------------------- how people actually phrase it


@pytest.mark.parametrize("text,verb", [
    ("我要签到", "checkin"),
    ("签 到", "checkin"),  # a space typed inside the word
    ("签到签到", "checkin"),  # said twice for emphasis
    ("签到了", "checkin"),
    ("【签到】", "checkin"),
    ("[签到]", "checkin"),
    ("签到🙏", "checkin"),
    ("👍签到👍", "checkin"),
    ("请帮我签到一下，谢谢", "checkin"),
    ("@研修助手签到", "checkin"),  # no space after the mention
    ("@王老师 @研修助手签到", "checkin"),
    ("进度查询", "progress"),
    ("查询进度", "progress"),
    ("🙏 进度", "progress"),
    ("我的进度呢", "progress"),
    ("@研修助手进度查询", "progress"),
    ("【帮助】", "help"),
    ("本校进度查询", "school_progress"),
])
def test_natural_phrasings_reach_the_verb(text: str, verb: str) -> None:
    assert parse_command(text).verb == verb


@pytest.mark.parametrize("text,verb,args", [
    ("【请假】明天 生病", "leave", "明天 生病"),
    ("「反思」今天很有收获", "reflection", "今天很有收获"),
    ("@研修助手反思 今天很有收获", "reflection", "今天很有收获"),
    ("@研修助手请假明天", "leave", "明天"),
])
def test_brackets_and_a_glued_mention_keep_the_text_after_the_verb(text: str, verb: str, args: str) -> None:
    command = parse_command(text)
    assert (command.verb, command.args) == (verb, args)


@pytest.mark.parametrize("text", [
    "今天的签到时间是几点",  # a question about 签到
    "签到了吗",
    "怎么签到",
    "不签到",  # a negation is not a typo of the verb
    "还没签到",
    "今天学生签到很积极",  # a sentence that mentions the verb
    "签到进度",  # two different verbs: ask, don't guess
    "签到签到签到",
    "明天开会前记得先签到再进教室",
    "老师们记得查看进度表",
    "@研修助手 你好",
])
def test_sentences_that_merely_contain_a_verb_are_not_taken_for_it(text: str) -> None:
    assert parse_command(text).verb == "unknown"


def test_a_name_glued_to_other_words_is_not_a_verb() -> None:
    assert parse_command("@研修助手进度表在哪").verb not in VERBS  # a mention, then a question


def test_a_reflection_that_talks_about_check_in_stays_a_reflection() -> None:
    text = "反思 今天签到后我先看了进度，学生很投入"
    command = parse_command(text)
    assert command.verb == "reflection" and command.args == "今天签到后我先看了进度，学生很投入"


async def test_a_teacher_who_types_wo_yao_qian_dao_is_checked_in(chat: SimChat, seeded) -> None:
    from storage.models import Checkin
    from tests.conftest import count_rows

    assert "张明 签到成功" in await chat.say("张明", "我要签到")
    assert "已签到" in await chat.say("张明", "@研修助手签到")
    assert "已签到" in await chat.say("张明", "【签到】🙏")
    assert await count_rows(seeded, Checkin) == 1
    asked = await chat.say("张明", "今天的签到时间是几点")
    assert "没看懂" in asked and await count_rows(seeded, Checkin) == 1
