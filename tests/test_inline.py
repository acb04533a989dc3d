"""Inline mode (lakegate.inline): work runs on the event loop until it would block, then in a worker thread."""

from __future__ import annotations

import threading

import pytest

from lakegate import inline


def test_outside_inline_mode_nothing_is_refused() -> None:
    inline.must_not_block()
    lock = threading.Lock()
    with inline.holding(lock):
        assert lock.locked()
    assert not lock.locked()


def test_work_that_would_block_is_handed_back_and_its_locks_released() -> None:
    lock = threading.Lock()
    reached: list[str] = []

    def work() -> str:
        with inline.holding(lock):
            reached.append("locked")
            inline.must_not_block()
            reached.append("blocked")  # never: a database query, a read, a build
        return "done"

    assert inline.run_inline(work) is None
    assert reached == ["locked"] and not lock.locked()
    assert not inline.active()  # the mode ends with the attempt
    assert work() == "done"  # as a worker thread runs it


def test_a_lock_held_elsewhere_is_not_waited_for_on_the_event_loop() -> None:
    lock = threading.Lock()
    lock.acquire()
    try:

        def work() -> str:
            with inline.holding(lock):
                return "never"

        assert inline.run_inline(work) is None
    finally:
        lock.release()
    assert inline.run_inline(lambda: "answered") == ("answered",)


def test_an_error_is_not_a_hand_over() -> None:
    def work() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        inline.run_inline(work)
