"""Bylines: who wrote a finews article, read from the paragraphs that name them.

Forms met on the site (see SITE.md, "What is inside a post body"):
``□ 本报记者张环泽``, ``本报通讯员赵峰顿星亮`` (two names run together),
``记者 X Y``, ``本报记者 X 通讯员 Y``, ``■ 本报记者 X 实习生 Y``, ``文/记者 X``,
``新华社北京2月18日电（记者 X、Y）`` and a trailing ``（记者 X）``.

Reporters (记者 and its variants) are *authors*, 通讯员 are *correspondents*,
everyone else (实习生, 编辑, 摄影…) is an *other*. Names run together are split
with a list of Chinese surnames (single and compound) and name lengths 2-3;
when a run cannot be split one way only, it is kept whole: order and
characters are never lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: the most common single-character surnames (ranked first when splitting)
COMMON_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺"
    "顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
#: other single-character surnames (many are also common given-name characters)
RARE_SURNAMES = frozenset(
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯"
    "纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农"
    "司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇"
    "栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢"
    "劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣"
    "晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危"
    "玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阎昝占顿经鱼钮滑荀羿储习宦艾"
)
SURNAMES = COMMON_SURNAMES | RARE_SURNAMES
#: two-character surnames; a name that starts with one is 3 or 4 characters long
COMPOUND_SURNAMES = frozenset(
    (
        "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 端木 独孤 "
        "南宫 西门 百里 呼延 澹台 公冶 太史 申屠 闻人 万俟 钟离 宗政 濮阳 淳于 单于 赫连 拓跋 "
        "第五 谷梁 左丘 东郭 司空 乐正 公羊 巫马 羊舌 梁丘"
    ).split()
)
#: the longest run of names (run together) that splitting considers
MAX_RUN = 12

AUTHOR = "author"
CORRESPONDENT = "correspondent"
OTHER = "other"

_CJK = "\u4e00-\u9fff\u3400-\u4dbf"
_ROLE_RE = re.compile(
    r"((?:本报|本刊|本台|本网|本社|特约|特派|见习|首席|驻站|全媒体|融媒体|新华社|中新社|央视|实习)*"
    r"(?:记者|通讯员|实习生|责任编辑|编辑|摄影|摄像|校对|审校|审核))"
)
#: list markers a byline paragraph may start with
_MARKERS = " \t\u3000\xa0□■●◆◇▲△★☆◎○▪▫•·-—－|｜丨"
#: 文/, 图/, 文/图 before the names of the writer
_WRITER_RE = re.compile(r"^(?:文|图)(?:\s*[/／]\s*(?:文|图))?\s*[/／|｜丨：:]\s*")
_SEP_RE = re.compile(r"[\s、，,/／|｜丨;；:：]+")
_NAME_RE = re.compile(rf"^[{_CJK}·•]+$")
#: tokens after the names that are not names: 北京报道, 摄, 发自上海, 整理
_NOT_NAME_RE = re.compile(r"(?:报道|发自.*|^摄影?|^整理|^综合|^编译|^编辑)$")
_PAREN_RE = re.compile(r"^[（(](?P<inner>[^（()）]{1,60})[)）]$")
#: ``新华社北京2月18日电（记者 X、Y）``, ``本报讯（记者 X 通讯员 Y）``
_DATELINE_RE = re.compile(
    rf"^(?P<lead>[{_CJK}\d]{{0,24}}?(?:电|讯))\s*[（(](?P<inner>[^（()）]{{1,60}})[)）]"
)
_TRAILING_RE = re.compile(r"[（(](?P<inner>[^（()）]{1,60})[)）][\s\u3000\xa0]*$")
#: a paragraph longer than this is never a byline
MAX_BYLINE = 80


@dataclass
class Byline:
    """The people a byline names, by role, in the order written."""

    authors: list[str] = field(default_factory=list)
    correspondents: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)

    def extend(self, other: Byline) -> None:
        """Add another byline's names, skipping ones already present."""
        for mine, theirs in (
            (self.authors, other.authors),
            (self.correspondents, other.correspondents),
            (self.others, other.others),
        ):
            mine.extend(name for name in theirs if name not in mine)


def _role_kind(role: str) -> str:
    if role.endswith("通讯员"):
        return CORRESPONDENT
    if role.endswith("记者") and "实习" not in role:
        return AUTHOR
    return OTHER


def _starts_with_surname(name: str) -> bool:
    return name[:2] in COMPOUND_SURNAMES or name[0] in SURNAMES


def _partitions(run: str) -> list[list[str]]:
    """Every way to cut ``run`` into names that start with a surname
    (2-3 characters, 3-4 after a compound surname)."""
    if not run:
        return [[]]
    out: list[list[str]] = []
    if run[:2] in COMPOUND_SURNAMES:
        lengths: tuple[int, ...] = (3, 4)
    elif run[0] in SURNAMES:
        lengths = (2, 3)
    else:
        return []
    for size in lengths:
        if size <= len(run):
            out.extend([run[:size], *rest] for rest in _partitions(run[size:]))
    return out


def _score(names: list[str]) -> tuple[int, int, int]:
    """How likely a cut is: names that start with a common or compound
    surname (more is better), names that start with a rare one (fewer is
    better: rare surnames are often given-name characters), then compound
    surnames (a compound surname is hardly ever an accident)."""
    compound = sum(name[:2] in COMPOUND_SURNAMES for name in names)
    common = sum(name[:2] not in COMPOUND_SURNAMES and name[0] in COMMON_SURNAMES for name in names)
    return compound + common, -(len(names) - compound - common), compound


def split_names(run: str) -> list[str]:
    """Split names written together, e.g. 赵峰顿星亮 → 赵峰, 顿星亮.

    A run of up to three characters (four after a compound surname) is one
    name. A longer run is cut into names of 2-3 characters that each start
    with a surname, preferring common surnames; when no cut or more than one
    equally good cut exists the run is returned whole.

    >>> split_names("赵峰顿星亮")
    ['赵峰', '顿星亮']
    >>> split_names("张环泽"), split_names("欧阳明月")
    (['张环泽'], ['欧阳明月'])
    >>> split_names("张三李四王五")
    ['张三', '李四', '王五']
    >>> split_names("李明华张伟")
    ['李明华', '张伟']
    >>> split_names("王伟欧阳明")
    ['王伟', '欧阳明']
    >>> split_names("司马光诸葛亮")
    ['司马光', '诸葛亮']
    >>> split_names("阿不都热依木")
    ['阿不都热依木']
    >>> split_names("王明文华强")  # 王明/文华强 or 王明文/华强: no sure cut
    ['王明文华强']
    """
    if len(run) <= 3 or (len(run) == 4 and run[:2] in COMPOUND_SURNAMES):
        return [run]
    if len(run) > MAX_RUN:
        return [run]
    options = _partitions(run)
    if not options:
        return [run]
    scores = [_score(option) for option in options]
    best = max(scores)
    if scores.count(best) != 1:
        return [run]
    return options[scores.index(best)]


def _name_tokens(text: str) -> list[str] | None:
    """The names in the text after a role, or None when it is not a list of
    names (a sentence, Latin text, a stray character)."""
    tokens = [token for token in _SEP_RE.split(text) if token]
    while tokens and _NOT_NAME_RE.search(tokens[-1]):
        tokens.pop()
    merged: list[str] = []
    single = ""
    for token in tokens:
        if not _NAME_RE.match(token) or len(token) > MAX_RUN:
            return None
        if len(token) == 1:  # 张 三: a name spaced out for alignment
            single += token
            continue
        if single:
            merged.append(single)
            single = ""
        merged.append(token)
    if single:
        merged.append(single)
    names: list[str] = []
    for token in merged:
        if len(token) < 2:
            return None
        names.extend(split_names(token))
    return names


def _strip_markers(text: str) -> str:
    return text.strip(_MARKERS)


def parse_byline(text: str) -> Byline | None:
    """The names of a paragraph that is a byline, or None when it is not one.

    >>> parse_byline("□ 本报记者张环泽 ")
    Byline(authors=['张环泽'], correspondents=[], others=[])
    >>> parse_byline("本报通讯员赵峰顿星亮")
    Byline(authors=[], correspondents=['赵峰', '顿星亮'], others=[])
    >>> parse_byline("本报记者 张三")
    Byline(authors=['张三'], correspondents=[], others=[])
    >>> parse_byline("本报记者　张三 李四")
    Byline(authors=['张三', '李四'], correspondents=[], others=[])
    >>> parse_byline("记者张三 通讯员李四")
    Byline(authors=['张三'], correspondents=['李四'], others=[])
    >>> parse_byline("■ 本报记者 王五 实习生 赵六")
    Byline(authors=['王五'], correspondents=[], others=['赵六'])
    >>> parse_byline("文/记者 陈七")
    Byline(authors=['陈七'], correspondents=[], others=[])
    >>> parse_byline("新华社北京2月18日电（记者 刘八、孙九）")
    Byline(authors=['刘八', '孙九'], correspondents=[], others=[])
    >>> parse_byline("（记者 周十）")
    Byline(authors=['周十'], correspondents=[], others=[])
    >>> parse_byline("本报记者 张 三 北京报道")
    Byline(authors=['张三'], correspondents=[], others=[])
    >>> parse_byline("责任编辑：王五")
    Byline(authors=[], correspondents=[], others=['王五'])
    >>> parse_byline("记者今天从国家知识产权局第四季度例行新闻发布会上了解到，今年以来。") is None
    True
    >>> parse_byline("据记者了解，作为第四代制冷剂") is None
    True
    >>> parse_byline("记者手记") is None
    True
    >>> parse_byline("深入一线，倾听企声找“痛点”") is None
    True
    """
    text = _strip_markers(text)
    if not text or len(text) > MAX_BYLINE:
        return None
    dated = _DATELINE_RE.match(text)
    if dated is not None:
        if _strip_markers(text[dated.end() :]):
            return None  # a lead paragraph that starts with a dateline, see parse_dateline
        return _parse_roles(dated["inner"], strong=True)
    paren = _PAREN_RE.match(text)
    if paren is not None:
        return _parse_roles(_strip_markers(paren["inner"]), strong=True)
    writer = _WRITER_RE.match(text)
    if writer is not None:
        rest = text[writer.end() :]
        if _ROLE_RE.match(rest):
            return _parse_roles(rest, strong=True)
        names = _name_tokens(rest)
        return Byline(authors=names) if names else None
    strong = text.startswith(("本", "特约", "特派", "首席", "新华社", "中新社"))
    strong = strong or text != text.lstrip(_MARKERS)
    return _parse_roles(text, strong=strong)


def _parse_roles(text: str, *, strong: bool) -> Byline | None:
    """``ROLE names ROLE names …``; ``strong`` when the context leaves no doubt
    that this is a byline (a marker, 本报…, a dateline), so that names need
    not start with a listed surname."""
    parts = _ROLE_RE.split(text)
    if len(parts) < 3 or _strip_markers(parts[0]):
        return None
    byline = Byline()
    found = 0
    for role, rest in zip(parts[1::2], parts[2::2], strict=True):
        names = _name_tokens(rest)
        if names is None:
            return None
        if not strong and not all(_starts_with_surname(name) for name in names):
            return None
        found += len(names)
        target = {
            AUTHOR: byline.authors,
            CORRESPONDENT: byline.correspondents,
            OTHER: byline.others,
        }[_role_kind(role)]
        target.extend(names)
    if not found or not parts[-1].strip(_MARKERS):
        return None
    return byline


def is_byline(text: str) -> bool:
    """Whether a whole paragraph is a byline (and so not body text).

    >>> is_byline("□ 本报记者张环泽"), is_byline("本报通讯员赵峰顿星亮")
    (True, True)
    >>> is_byline("记者今天从国家知识产权局了解到"), is_byline("精准监督，深挖症结破“堵点”")
    (False, False)
    """
    return parse_byline(text) is not None


def parse_dateline(text: str) -> tuple[Byline | None, str]:
    """The byline of a lead paragraph that opens with a dateline, and the
    paragraph itself (kept: the dateline is part of the lead).

    >>> byline, text = parse_dateline("新华社北京2月18日电（记者 刘八、孙九）国务院日前印发通知。")
    >>> byline
    Byline(authors=['刘八', '孙九'], correspondents=[], others=[])
    >>> text
    '新华社北京2月18日电（记者 刘八、孙九）国务院日前印发通知。'
    >>> parse_dateline("本报讯（记者 张三 通讯员 李四）近日，")[0]
    Byline(authors=['张三'], correspondents=['李四'], others=[])
    >>> parse_dateline("融信中国(03301.HK)：自二零二一年十一月十一日起")
    (None, '融信中国(03301.HK)：自二零二一年十一月十一日起')
    """
    dated = _DATELINE_RE.match(_strip_markers(text))
    if dated is None:
        return None, text
    return _parse_roles(_strip_markers(dated["inner"]), strong=True), text


def split_trailing_byline(text: str) -> tuple[str, Byline | None]:
    """A trailing ``（记者 X）`` cut from the end of a paragraph.

    >>> split_trailing_byline("全年增长8.4%。（记者 王五 通讯员 赵六）")
    ('全年增长8.4%。', Byline(authors=['王五'], correspondents=['赵六'], others=[]))
    >>> split_trailing_byline("为2018年以来最高水平。(央视新闻)")
    ('为2018年以来最高水平。(央视新闻)', None)
    >>> split_trailing_byline("融信中国(03301.HK)")
    ('融信中国(03301.HK)', None)
    """
    match = _TRAILING_RE.search(text)
    if match is None:
        return text, None
    byline = _parse_roles(_strip_markers(match["inner"]), strong=True)
    if byline is None:
        return text, None
    return text[: match.start()].rstrip(), byline
