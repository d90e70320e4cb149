"""Builds a small tokenizer.json in the Chameleon layout.

The id layout follows the published Chameleon/Orthus vocabulary (docs/model.md §3.6):
  0 <s>, 1 <pad>, 2 </s>, 3 <unk>
  4..8195      image-code names IMGIMG<letters>Z (VQ code k <-> id k+4)
  8196 <eoss> (EOI), 8197 <racm3:break> (BOI)
  8198..8710   <reservedNNNNN> with NNNNN = id - 4 (8710 = <reserved08706>, the SEP)
  8711 <image> (the renamed <reserved08707>)
  8712..8715   <sentinel:0..3>
  then the 256 byte-level symbols and the learned merges.
The pre-tokenizer is the Chameleon sequence of isolated splits followed by byte-level GPT-2 splitting.
Only the merges are learned here (on a small text corpus), so the vocabulary is tiny.
"""

import json

from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

BOS, PAD, EOS, UNK = 0, 1, 2, 3
IMAGE_CODE_FIRST, IMAGE_CODE_COUNT = 4, 8192
EOI, BOI, SEP, IMAGE = 8196, 8197, 8710, 8711
SENTINEL_COUNT = 4
FIRST_TEXT_ID = IMAGE + 1 + SENTINEL_COUNT

CHAMELEON_SPLITS = [
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    "\\p{N}",
    "[\\p{P}!-/:-@\\[-`{-~]",
]


def image_code_name(code: int) -> str:
    """IMGIMG + decimal digits written as letters (A=0 .. J=9) + Z, as Chameleon's vocab.py does."""
    return "IMGIMG" + "".join(chr(ord("A") + int(d)) for d in str(code)) + "Z"


def special_tokens() -> list[tuple[int, str]]:
    tokens = [(BOS, "<s>"), (PAD, "<pad>"), (EOS, "</s>"), (UNK, "<unk>"), (EOI, "<eoss>"), (BOI, "<racm3:break>")]
    tokens += [(i, f"<reserved{i - 4:05d}>") for i in range(BOI + 1, IMAGE)]
    tokens.append((IMAGE, "<image>"))
    tokens += [(IMAGE + 1 + k, f"<sentinel:{k}>") for k in range(SENTINEL_COUNT)]
    return tokens


def pre_tokenizer_json() -> dict:
    splits = [
        {"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": False} for p in CHAMELEON_SPLITS
    ]
    splits.append({"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True})
    return {"type": "Sequence", "pretokenizers": splits}


def learn_merges(corpus: list[str], merge_count: int) -> list[tuple[str, str]]:
    """Learns BPE merges with the same pre-tokenizer; ids are reassigned afterwards."""
    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), "isolated") for p in CHAMELEON_SPLITS]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + merge_count, initial_alphabet=alphabet, show_progress=False, min_frequency=2
    )
    learner.train_from_iterator(corpus, trainer)
    merges = json.loads(learner.to_str())["model"]["merges"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in merges]
    return merges[:merge_count]


def byte_symbols() -> list[str]:
    """The 256 byte-level symbols in byte order (GPT-2's bytes_to_unicode)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {}
    extra = 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def build_tokenizer_json(corpus: list[str], vocab_size: int) -> dict:
    merge_count = vocab_size - FIRST_TEXT_ID - 256
    # Learn spare merges: some duplicate a symbol already in the vocabulary and are skipped below.
    merges = learn_merges(corpus, 2 * merge_count)
    vocab: dict[str, int] = {}
    for token_id, content in special_tokens():
        vocab[content] = token_id
    for code in range(IMAGE_CODE_COUNT):
        vocab[image_code_name(code)] = IMAGE_CODE_FIRST + code
    next_id = FIRST_TEXT_ID
    for symbol in byte_symbols():
        vocab[symbol] = next_id
        next_id += 1
    kept_merges = []
    for left, right in merges:
        merged = left + right
        if merged in vocab or left not in vocab or right not in vocab:
            continue
        vocab[merged] = next_id
        next_id += 1
        kept_merges.append([left, right])
        if next_id == vocab_size:
            break
    assert next_id == vocab_size, f"only {next_id} ids for a vocabulary of {vocab_size}: learn more merges"
    added = [
        {
            "id": token_id,
            "content": content,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for token_id, content in sorted(special_tokens())
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer_json(),
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": kept_merges,
        },
    }
