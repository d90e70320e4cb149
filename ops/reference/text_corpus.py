"""Seeded text for learning merges and for the tokenizer golden corpus."""

import random

WORDS = (
    "the a an of to in is was it that for on with as by at from his her they this which be or are have not had "
    "image picture photo red green blue yellow circle square triangle left right above below centre small large "
    "generate describe question answer model token patch layer stage worker cluster cat dog tree house river "
    "mountain sky cloud sun moon star night day morning evening table chair window door book paper pencil "
    "running jumped quickly slowly beautiful strange ancient modern electric quantum neural network diffusion"
).split()

UNICODE = [
    "café", "naïve", "résumé", "Ångström", "Straße", "façade", "jalapeño", "Ελληνικά", "русский", "עברית",
    "العربية", "हिन्दी", "ไทย", "한국어", "Tiếng Việt", "crème brûlée", "Zürich", "Œuvre", "ﬁne", "Ⅻ", "①②③",
    "½ ¾", "x²", "µs", "°C", "™", "…", "—", "“quoted”", "‘single’", "«guillemets»", "¿qué?", "¡hola!",
]
CJK = ["你好世界", "日本語のテキスト", "東京都", "漢字", "中文分词测试", "カタカナ", "ひらがな", "이미지 생성", "模型"]
EMOJI = ["😀", "🎉", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🧪", "🚀✨", "🐱‍👤", "☕", "1️⃣", "🏳️‍🌈"]
SPECIAL = [
    "<s>", "</s>", "<pad>", "<unk>", "<image>", "<racm3:break>", "<eoss>", "<reserved08706>", "<reserved08300>",
    "<sentinel:0>", "<sentinel:3>", "<sentinel:12>", "IMGIMGBAZ", "IMGIMGAAAAZ", "IMGIMGJZ", "<imag", "<s", "s>",
    "<<image>>", "<image><image>",
]
CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "let y = try await model.forward(ids: [0, 15, 7])",
    "SELECT * FROM jobs WHERE id = 42;",
    "x = {'a': [1, 2, 3], \"b\": None}",
    "if a != b && c <= d || !e { return }",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 3); }",
    "    indented    code\twith\ttabs",
    "path/to/file.safetensors:123",
    "https://example.com/a?b=c&d=e#f",
    "$HOME ~/bin `cmd` @user #tag 100% ^caret",
]
WHITESPACE = [" ", "  ", "   ", "    ", "     ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \n ", "\r\n", "\u00a0", "\u3000"]
DIGITS = ["0", "7", "42", "2024", "3.14159", "1,000,000", "-17", "1e-5", "0x1F", "٣٤", "１２３"]
CONTRACTIONS = ["it's", "don't", "we're", "they've", "I'm", "you'll", "he'd", "O'Neil", "rock'n'roll", "'s'"]


STDLIB_MODULES = (
    "os", "json", "re", "collections", "random", "math", "itertools", "functools", "string", "textwrap",
    "argparse", "pathlib", "typing", "unittest", "logging", "subprocess", "threading", "socket", "shutil", "heapq",
)


def training_text(rng: random.Random, count: int) -> list[str]:
    """English-like sentences plus Python's own documentation, so the merges look like a real text vocabulary."""
    import importlib
    import inspect

    lines = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        for _, member in inspect.getmembers(module):
            doc = inspect.getdoc(member)
            if doc:
                lines.extend(line for line in doc.splitlines() if line.strip())
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 16))]
        sentence = " ".join(words)
        lines.append(sentence[0].upper() + sentence[1:] + rng.choice([".", "!", "?", ",", ""]))
    return lines


def _piece(rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        return rng.choice(UNICODE)
    if kind == 1:
        return rng.choice(CJK)
    if kind == 2:
        return rng.choice(EMOJI)
    if kind == 3:
        return rng.choice(SPECIAL)
    if kind == 4:
        return rng.choice(CODE)
    if kind == 5:
        return rng.choice(WHITESPACE)
    if kind == 6:
        return rng.choice(DIGITS)
    if kind == 7:
        return rng.choice(CONTRACTIONS)
    if kind == 8:
        return "".join(rng.choice("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") for _ in range(rng.randint(1, 4)))
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))


def tokenizer_corpus(rng: random.Random, count: int) -> list[str]:
    """Varied strings: every category alone, then random mixes with random separators."""
    fixed = UNICODE + CJK + EMOJI + SPECIAL + CODE + WHITESPACE + DIGITS + CONTRACTIONS + ["", "a", " a", "a "]
    corpus = list(fixed)
    while len(corpus) < count:
        parts = [_piece(rng) for _ in range(rng.randint(1, 6))]
        separators = ["", " ", "  ", "\n", "\t", " \n"]
        text = parts[0]
        for part in parts[1:]:
            text += rng.choice(separators) + part
        if rng.random() < 0.1:
            text = text.upper()
        corpus.append(text)
    return corpus
