"""Build a post body's HTML together with what it means (ground truth by construction).

Every piece the generator adds (byline, paragraph, cross-head, image,
noise, source line) is written as HTML and, at the same time, recorded as
the expected result: body lines, images, authors, correspondents, source.
Nothing here parses HTML.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass, field

from newscrawl.replica import vocab
from newscrawl.replica.textgen import TextGen

#: (text, html) of one sentence
Piece = tuple[str, str]

HIDDEN_P = '<p style="display:none;height:1px;overflow:hidden;"><br /></p>'
IMG_STYLE = "border:#d1d1d1 1px solid;padding:3px;margin:5px 0;"
ENTITY_SENTENCES = (
    "据了解，《<蒙特利尔议定书>基加利修正案》已于去年正式对我国生效。",
    "标普&道琼斯指数公司宣布调整相关指数成分股。",
    "公司A&B两类股份均已完成登记。",
    "年内涨幅>10%的成分股超过三成，涨幅<0的不足一成。",
)
#: spacing between a byline's role words and names
SPACINGS = (" ", "　", "", "  ", "　　", " ")


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def stock_html(name: str, market: str, code: str, style: str) -> str:
    """A stock name as the share service marks it up (the text stays ``name``)."""
    link = f"http://quote.eastmoney.com/unify/r/{market}.{code}"
    if style == "key":
        return (
            f'<span web="1" href="{link}" class="em_stock_key_common" '
            f'data-code="{market},{code}">{name}</span>'
        )
    return (
        f'<span id="stock_{market}.{code}"><a href="{link}" class="keytip" '
        f'data-code="{market},{code}">{name}</a></span><span id="quote_{market}.{code}"></span>'
    )


def board_html(name: str, code: str) -> str:
    link = f"http://quote.eastmoney.com/unify/r/90.{code}"
    return (
        f'<span id="bk_90.{code}"><a href="{link}" class="keytip" data-code="90,{code}">'
        f'{name}</a></span><span id="bkquote_90.{code}"></span>'
    )


def stock_chart_html(rng: random.Random) -> str:
    """A hidden paragraph plus an EM_StockImg chart block (noise; not an image)."""
    _name, market, code = rng.choice(vocab.COMPANIES)
    token = f"{rng.getrandbits(128):032x}"
    return (
        f'{HIDDEN_P}<!-- EM_StockImg_Start --><p style="text-align:center;">'
        f'<a href="http://quote.eastmoney.com/unify/r/{market}.{code}" '
        f'data-code="{code}|{market}|7" data-code2="{code}|{market}|3|" class="EmImageRemark" '
        f'target="_blank"><img src="https://webquoteklinepic.eastmoney.com/GetPic.aspx?nid='
        f'{market}.{code}&imageType=k&token={token}&at=1" border="0" alt="K图 {code}_0" '
        f'data-code="K {code}|{market}|7" data-code2="K {code}|{market}|3|" '
        f'style="border:#d1d1d1 1px solid;" width="578" height="276" /></a></p>'
        "<!-- EM_StockImg_End -->"
    )


@dataclass
class Part:
    """One top-level piece of the body HTML; ``tail`` goes right before ``</p>``."""

    kind: str
    head: str
    inner: str
    tail: str = ""
    end: str = "</p>"

    def render(self) -> str:
        return f"{self.head}{self.inner}{self.tail}{self.end}"


@dataclass
class BodyTruth:
    lines: list[str] = field(default_factory=list)
    images: list[dict[str, str | None]] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    correspondents: list[str] = field(default_factory=list)
    source: str | None = None
    features: set[str] = field(default_factory=set)


class BodyBuilder:
    """Accumulates body parts and their meaning; :meth:`html` joins them in a layout.

    Layouts: ``lines`` (one part per line, later lines indented by a space,
    the source line glued to the last paragraph: the real media posts),
    ``inline`` (everything on one line: the real rolling posts) and
    ``newline``.
    """

    def __init__(self, rng: random.Random, text: TextGen, layout: str = "lines") -> None:
        self.rng = rng
        self.text = text
        self.layout = layout
        self.parts: list[Part] = []
        self.truth = BodyTruth()

    # -- bylines -----------------------------------------------------------

    def byline(self, form: str) -> None:
        """Add a byline paragraph (or, for ``end``, remember it for the last paragraph)."""
        rng, t = self.rng, self.truth
        sp = rng.choice(SPACINGS)
        names = self.text.names(2)
        a, b = names
        tail = " " if rng.random() < 0.3 else ""
        if form == "box":
            lines = [f"□ 本报记者{sp}{a}"]
            t.authors.append(a)
        elif form == "box_tongxunyuan":
            c = next(n for n in iter(self.text.name, None) if n not in (a, b))
            lines = [f"□ 本报记者{sp}{a}", f"本报通讯员{b}{c}"]
            t.authors.append(a)
            t.correspondents += [b, c]
        elif form == "tongxunyuan":
            lines = [f"本报通讯员{a}{b}"]
            t.correspondents += [a, b]
        elif form == "jizhe_two":
            lines = [f"记者{sp}{a}{sp}{b}"]
            t.authors += [a, b]
        elif form == "jizhe_tongxunyuan":
            lines = [f"本报记者{sp}{a}{sp or ' '}通讯员{sp}{b}"]
            t.authors.append(a)
            t.correspondents.append(b)
        elif form == "xinhua":
            when = self.text.when
            month, day = (when.month, when.day) if when else (2, 18)
            city = rng.choice(vocab.CITIES)
            lines = [f"新华社{city}{month}月{day}日电（记者{sp}{a}、{b}）"]
            t.authors += [a, b]
        elif form == "wen":
            lines = [f"文/记者{sp}{a}"]
            t.authors.append(a)
        elif form == "intern":
            lines = [f"■ 本报记者{sp}{a}{sp or ' '}实习生{sp}{b}"]
            t.authors.append(a)
        else:
            raise ValueError(f"unknown byline form {form!r}")
        for line in lines:
            self.parts.append(Part("byline", "<p>", esc(line), tail))
        t.features.add(f"byline/{form}")
        if sp == "":
            t.features.add("byline/no_space")
        elif "　" in sp:
            t.features.add("byline/fullwidth_space")
        elif len(sp) > 1:
            t.features.add("byline/several_spaces")

    def end_byline(self, name: str, spacing: str) -> str:
        """The ``（记者 X）`` text glued to the end of the last paragraph."""
        self.truth.authors.append(name)
        self.truth.features.add("byline/end")
        return f"（记者{spacing}{name}）"

    # -- text ----------------------------------------------------------------

    def pieces(self, sentences: list[str]) -> list[Piece]:
        return [(s, esc(s)) for s in sentences]

    def stock_piece(self) -> Piece:
        (n1, m1, c1), (n2, m2, c2) = self.rng.sample(vocab.COMPANIES, 2)
        style2 = "key" if self.rng.random() < 0.5 else "link"
        text = f"具体来看，{n1}、{n2}已有相关产品布局，国内大型企业均将其作为未来新的业绩增长点。"
        info = (
            '<span id="Info.3321"><a href="http://data.eastmoney.com/bbsj/" class="infokey">'
            "业绩</a></span>"
        )
        markup = (
            f"具体来看，{stock_html(n1, m1, c1, 'link')}、{stock_html(n2, m2, c2, style2)}"
            f"已有相关产品布局，国内大型企业均将其作为未来新的{info}增长点。"
        )
        self.truth.features.add("noise/stock_link")
        if style2 == "key":
            self.truth.features.add("noise/stock_key")
        return text, markup

    def board_piece(self) -> Piece:
        name, code = self.rng.choice(vocab.BOARDS)
        self.truth.features.add("noise/board_link")
        return f"{name}板块今日整体走强。", f"{board_html(name, code)}板块今日整体走强。"

    def entity_piece(self) -> Piece:
        sentence = self.rng.choice(ENTITY_SENTENCES)
        self.truth.features.add("text/entities")
        return sentence, esc(sentence)

    def paragraph(
        self,
        pieces: list[Piece],
        *,
        indent: bool = False,
        trailing: bool = False,
        br: bool = False,
    ) -> None:
        """Add a body paragraph made of sentences; ``br`` splits it into two lines."""
        groups = [pieces]
        if br and len(pieces) >= 2:
            k = self.rng.randint(1, len(pieces) - 1)
            groups = [pieces[:k], pieces[k:]]
            self.truth.features.add("text/br")
        inner = "<br />".join("".join(h for _t, h in g) for g in groups)
        for g in groups:
            self.truth.lines.append("".join(t for t, _h in g))
        head = "<p>"
        if indent:
            head += self.rng.choice(("　　", "　"))
            self.truth.features.add("text/indent")
        tail = ""
        if trailing:
            tail = self.rng.choice((" ", "  ", "&nbsp;", "　"))
            self.truth.features.add("text/trailing_space")
        self.parts.append(Part("para", head, inner, tail))

    def cross_head(self, strong: bool) -> None:
        line = self.text.cross_head()
        self.truth.lines.append(line)
        if strong:
            self.parts.append(Part("head", "<p><strong>", esc(line), "", "</strong></p>"))
            self.truth.features.add("text/cross_head_strong")
        else:
            self.parts.append(Part("head", "<p>", esc(line)))
            self.truth.features.add("text/cross_head")

    def append_to_last_paragraph(self, text_html: str) -> None:
        for part in reversed(self.parts):
            if part.kind == "para":
                part.inner += text_html
                return
        raise ValueError("no paragraph to append to")

    # -- images and noise ----------------------------------------------------

    def image(self, caption: str | None) -> None:
        """An image; ``caption`` is None, ``source`` (centered 图片来源), ``tuwei`` or ``tu``."""
        rng = self.rng
        w, h = 800, rng.choice((343, 450, 533, 555, 600))
        src = f"https://dfscdn.dfcfw.com/download/D{rng.randint(10**19, 10**20 - 1)}_w{w}h{h}.jpg"
        self.parts.append(
            Part(
                "image",
                "<center>",
                f'<img src="{src}" alt="Image" width="552" style="{IMG_STYLE}" />',
                "",
                "</center>",
            )
        )
        text: str | None = None
        if caption == "source":
            text = f"图片来源：{rng.choice(vocab.IMAGE_SOURCES)}"
            self.parts.append(Part("caption", '<p style="text-align:center;">', esc(text)))
        elif caption == "tuwei":
            text = f"图为{rng.choice(vocab.REGIONS)}一家企业的生产车间。"
            self.parts.append(Part("caption", "<p>", esc(text)))
        elif caption == "tu":
            text = f"图：{rng.choice(vocab.INDUSTRIES)}产品展示"
            self.parts.append(Part("caption", '<p style="text-align:center">', esc(text)))
        self.truth.images.append({"src": src, "caption": text})
        self.truth.features.add("image/captioned" if text else "image/uncaptioned")

    def hidden(self) -> None:
        self.parts.append(Part("noise", HIDDEN_P, "", "", ""))
        self.truth.features.add("noise/hidden")

    def stock_chart(self) -> None:
        self.parts.append(Part("noise", stock_chart_html(self.rng), "", "", ""))
        self.truth.features.add("noise/stock_chart")

    # -- source line -----------------------------------------------------------

    def source_line(self, name: str, cut: bool = False) -> None:
        """``<p class="em_media">（文章来源：NAME）</p>``; ``cut`` wraps a word of it in markup."""
        inner = f"（文章来源：{esc(name)}）"
        if cut:
            for paper, word, code in vocab.CUT_SOURCES:
                if paper == name:
                    i = name.index(word)
                    inner = (
                        f"（文章来源：{name[:i]}{board_html(word, code)}{name[i + len(word) :]}）"
                    )
                    break
            else:
                raise ValueError(f"{name} cannot be cut")
            self.truth.features.add("source/em_media_cut")
        else:
            self.truth.features.add("source/em_media")
        self.parts.append(Part("source", '<p class="em_media">', inner))
        self.truth.source = name

    # -- output ------------------------------------------------------------------

    def html(self) -> str:
        rendered = [p.render() for p in self.parts]
        if self.layout == "inline":
            return "".join(rendered)
        sep = "\n " if self.layout == "lines" else "\n"
        out = rendered[0]
        for part, text in zip(self.parts[1:], rendered[1:], strict=True):
            out += (
                "" if part.kind in ("source", "noise") and self.layout == "lines" else sep
            ) + text
        return out
