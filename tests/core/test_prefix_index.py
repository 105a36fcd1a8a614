"""The prefix index: chained block hashes, a bounded LRU per worker, longest-prefix match in
estimated tokens, corrected by the tokens workers report."""

from __future__ import annotations

from rbee_core.prefix_index import (
    BLOCK_CHARS,
    CHARS_PER_TOKEN,
    PrefixIndex,
    answer_blocks,
    prompt_blocks,
)

SYSTEM = ("system", "You are a helpful assistant. " * 20)


def chat(*turns: str) -> list[tuple[str, str]]:
    return [SYSTEM, *(("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns))]


def test_a_chat_is_one_block_per_message_chained_so_a_block_stands_for_its_prefix() -> None:
    first = prompt_blocks("q2", chat("q1", "a1", "q2"))
    other = prompt_blocks("q2", chat("q0", "a1", "q2"))
    assert len(first) == 4
    assert first[0] == other[0]  # the same system message
    # The same later messages after a different one: a different prefix, different hashes.
    assert [b.digest for b in first[1:]] != [b.digest for b in other[1:]]
    assert first[2].digest != other[2].digest and first[3].digest != other[3].digest


def test_a_raw_prompt_is_cut_in_fixed_character_blocks() -> None:
    blocks = prompt_blocks("x" * (2 * BLOCK_CHARS + 10))
    assert [b.chars for b in blocks] == [BLOCK_CHARS, BLOCK_CHARS, 10]
    assert prompt_blocks("") == []


def test_the_next_turn_matches_what_a_worker_served_including_its_answer() -> None:
    index = PrefixIndex()
    turn1 = chat("What is a bee?")
    index.record("w1", answer_blocks("What is a bee?", turn1, "An insect."), 0, None)
    turn2 = chat("What is a bee?", "An insect.", "And a hive?")
    blocks = prompt_blocks("And a hive?", turn2)
    held = sum(b.chars for b in blocks[:-1])  # all but the new question
    assert index.match("w1", blocks) == round(held / CHARS_PER_TOKEN)
    assert index.match("w2", blocks) == 0  # another worker served none of it
    # A different answer in the history breaks the chain after the first question.
    other = prompt_blocks("And a hive?", chat("What is a bee?", "A fly.", "And a hive?"))
    assert index.match("w1", other) == round(sum(b.chars for b in other[:2]) / CHARS_PER_TOKEN)


def test_a_raw_prompt_followed_by_its_answer_matches_whole_blocks() -> None:
    index = PrefixIndex()
    prompt = "a" * 600
    index.record("w1", answer_blocks(prompt, (), "b" * 100), 0, None)
    longer = prompt_blocks(prompt + "b" * 100 + "c" * 300)
    assert index.match("w1", longer) == round(2 * BLOCK_CHARS / CHARS_PER_TOKEN)


def test_each_worker_keeps_a_bounded_lru_of_blocks() -> None:
    index = PrefixIndex(blocks_per_worker=4)
    old = prompt_blocks("o" * (2 * BLOCK_CHARS))
    index.record("w1", old)
    index.record("w1", prompt_blocks("n" * (3 * BLOCK_CHARS)))
    assert index.match("w1", old) == 0  # its first block was the oldest, and went
    index.record("w1", old)
    assert index.match("w1", old) > 0


def test_reported_prompt_tokens_correct_the_estimate() -> None:
    index = PrefixIndex()
    blocks = prompt_blocks("z" * 1000)
    assert index.estimate(blocks) == 250
    for _ in range(40):  # this model's tokenizer: 2 characters a token
        index.record("w1", blocks, prompt_chars=1000, prompt_tokens=500)
    assert 490 <= index.estimate(blocks) <= 510
    assert 490 <= index.match("w1", blocks) <= 510
    index.record("w1", blocks, prompt_chars=1000, prompt_tokens=0)  # no count: no change
    assert 490 <= index.estimate(blocks) <= 510


def test_a_worker_that_goes_is_forgotten() -> None:
    index = PrefixIndex()
    blocks = prompt_blocks("p" * 300)
    index.record("w1", blocks)
    index.record("w2", blocks)
    index.forget("w1")
    assert index.match("w1", blocks) == 0 and index.match("w2", blocks) > 0
    index.keep_only(["w3"])
    assert len(index) == 0
