"""Detokenizer: text deltas from token ids, never splitting a multi-byte character."""

from __future__ import annotations

from collections.abc import Sequence

from rbee_torch.detokenize import Detokenizer

REPLACEMENT = "\ufffd"


class ByteTokenizer:
    """A fake tokenizer: each id maps to raw bytes; decode joins them as UTF-8."""

    def __init__(self, vocab: dict[int, bytes], special: frozenset[int] = frozenset()) -> None:
        self.vocab = vocab
        self.special = special
        self.calls: list[tuple[list[int], bool]] = []

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        self.calls.append((list(ids), skip_special_tokens))
        data = b"".join(
            self.vocab[i] for i in ids if not (skip_special_tokens and i in self.special)
        )
        return data.decode("utf-8", errors="replace")


def push_all(tokenizer: ByteTokenizer, ids: Sequence[int]) -> list[str]:
    detok = Detokenizer(tokenizer)
    return [detok.push(i) for i in ids]


def byte_tokens(text: str) -> tuple[ByteTokenizer, list[int]]:
    """One token per byte of ``text``'s UTF-8 encoding."""
    data = text.encode()
    return ByteTokenizer({i: bytes([b]) for i, b in enumerate(data)}), list(range(len(data)))


def test_ascii_tokens_come_out_immediately() -> None:
    tok = ByteTokenizer({1: b"Hel", 2: b"lo", 3: b", ", 4: b"world"})
    assert push_all(tok, [1, 2, 3, 4]) == ["Hel", "lo", ", ", "world"]


def test_two_byte_char_split_across_two_tokens() -> None:
    e_acute = "é".encode()
    assert len(e_acute) == 2
    tok = ByteTokenizer({1: b"caf", 2: e_acute[:1], 3: e_acute[1:], 4: b"!"})
    out = push_all(tok, [1, 2, 3, 4])
    assert out == ["caf", "", "é", "!"]
    assert all(REPLACEMENT not in text for text in out)
    assert "".join(out).count("é") == 1


def test_four_byte_emoji_split_across_four_tokens() -> None:
    bee = "🐝".encode()
    tok = ByteTokenizer({10 + i: bee[i : i + 1] for i in range(4)} | {1: b"a", 2: b"b"})
    out = push_all(tok, [1, 10, 11, 12, 13, 2])
    assert out == ["a", "", "", "", "🐝", "b"]


def test_split_char_at_the_very_start() -> None:
    data = "ü".encode()
    tok = ByteTokenizer({1: data[:1], 2: data[1:]})
    assert push_all(tok, [1, 2]) == ["", "ü"]


def test_token_holding_the_end_of_one_char_and_the_start_of_the_next() -> None:
    data = "éé".encode()  # c3 a9 c3 a9
    tok = ByteTokenizer({1: data[:1], 2: data[1:3], 3: data[3:]})
    out = push_all(tok, [1, 2, 3])
    assert out == ["", "", "éé"]


def test_every_byte_its_own_token_reassembles_the_text_exactly() -> None:
    text = "Grüße, 世界! 🐝🍯 ✓ naïve — done"
    tok, ids = byte_tokens(text)
    out = push_all(tok, ids)
    assert "".join(out) == text
    assert all(REPLACEMENT not in piece for piece in out)
    # Each character is emitted once, on the token that completes it.
    assert [piece for piece in out if piece] == list(text)


def test_special_tokens_are_skipped() -> None:
    tok = ByteTokenizer({0: b"<s>", 1: b"hi", 2: b"</s>"}, special=frozenset({0, 2}))
    out = push_all(tok, [0, 1, 2])
    assert out == ["", "hi", ""]
    assert all(skip for _, skip in tok.calls)


def test_text_after_skipped_special_tokens() -> None:
    tok = ByteTokenizer({0: b"<pad>", 1: b"a", 2: b"b"}, special=frozenset({0}))
    assert push_all(tok, [0, 0, 1, 0, 2]) == ["", "", "a", "", "b"]


def test_decode_window_stays_short() -> None:
    tok, ids = byte_tokens("abcdefghij" * 5)
    push_all(tok, ids)
    # Decoding works on a sliding window, not on the whole history every time.
    assert max(len(call_ids) for call_ids, _ in tok.calls) <= 2
