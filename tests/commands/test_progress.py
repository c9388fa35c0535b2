"""The commands' progress bar: redrawn in place on a terminal, one summary line elsewhere."""

from io import StringIO

from castiel.commands import Progress


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_ends_with_a_newline():
    stream = StringIO()
    with Progress(stream, total=4, label="replaying", unit="events", tty=True) as bar:
        for _ in range(4):
            bar.advance()
    text = stream.getvalue()
    assert text.count("\r\033[K") >= 2, "redrawn on the same line"
    assert text.endswith("replaying [##############################] 4/4 events\n")
    assert "\n" not in text[:-1], "a single terminal line until the end"


def test_elsewhere_only_the_summary_line_is_written():
    stream = StringIO()
    with Progress(stream, total=None, label="syncing", unit="records") as bar:
        bar.update(120, "(3 pages, succeeded)")
    assert stream.getvalue() == "syncing: 120 records (3 pages, succeeded)\n"
