"""`flowtui score` refuses every bad submission or answers file with one line (or one JSON object) and
exit 2, quoting what the file holds (never a parsed float or a numpy repr).

Bad inputs tried here (class E, score files): 24 bad submissions, 10 bad answers files, each also under
--json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowtui.cli import app

runner = CliRunner()

GOOD_SUB = "sample_id,is_listened\n0,0.2\n1,0.9\n2,0.5\n3,0.1\n"
GOOD_ANS = "sample_id,is_listened,p_true\n0,0,0.3\n1,1,0.8\n2,1,0.6\n3,0,0.2\n"

# name -> (file content, words the one-line error must hold)
BAD_SUBMISSIONS: dict[str, tuple[bytes, list[str]]] = {
    "above 1": (GOOD_SUB.replace("0.9", "1.5").encode(), [":3:", "'is_listened'", "from 0 to 1", "'1.5'"]),
    "below 0": (GOOD_SUB.replace("0.2", "-0.1").encode(), [":2:", "out of range", "'-0.1'"]),
    "huge": (GOOD_SUB.replace("0.2", "1e400").encode(), ["'1e400'"]),
    "inf": (GOOD_SUB.replace("0.2", "inf").encode(), ["not a number", "'inf'"]),
    "nan": (GOOD_SUB.replace("0.2", "nan").encode(), ["not a number", "'nan'"]),
    "empty value": (GOOD_SUB.replace("0.2", "").encode(), ["an empty field"]),
    "hex value": (GOOD_SUB.replace("0.2", "0x1").encode(), ["'0x1'"]),
    "text value": (GOOD_SUB.replace("0.2", "high").encode(), ["'high'"]),
    "percent": (GOOD_SUB.replace("0.2", "20%").encode(), ["'20%'"]),
    "fractional id": (GOOD_SUB.replace("\n1,", "\n1.5,").encode(), ["'sample_id'", "'1.5'"]),
    "hex id": (GOOD_SUB.replace("\n1,", "\n0x1,").encode(), ["'0x1'"]),
    "huge id": (GOOD_SUB.replace("\n1,", "\n99999999999999999999999,").encode(), ["decimal integer"]),
    "repeated id": (GOOD_SUB.replace("\n3,", "\n2,").encode(), ["repeated sample_id", ":5:", "'2'"]),
    "missing column": (b"sample_id,p\n0,0.5\n", ["lacks", "is_listened"]),
    "header only": (b"sample_id,is_listened\n", ["no rows"]),
    "empty": (b"", ["empty submission file"]),
    "blank lines": (b"\n\n\n", ["no header"]),
    "binary": (bytes(range(256)), ["binary"]),
    "non-UTF-8": (GOOD_SUB.replace("0.2", "\xe9").encode("latin-1"), ["non-UTF-8"]),
    "UTF-16": (GOOD_SUB.encode("utf-16"), ["binary"]),
    "ragged rows": (b"sample_id,is_listened\n0,0.5,1,2\n1\n", [":2:", "wrong number of fields"]),
    "short row": (b"sample_id,is_listened\n0,0.5\n\n1\n", [":4:", "expected 2 fields", "found 1"]),
    "unclosed quote": (b'sample_id,is_listened\n0,"0.5\n1,0.2\n', ["submission"]),
    "other ids": (GOOD_SUB.replace("\n3,", "\n7,").encode(), ["do not match", "1 missing", "1 not in"]),
    "a train file": (
        b"genre_id,ts_listen,media_id,user_id,is_listened\n1,2,3,4,1\n",
        ["lacks", "sample_id"],
    ),
}
BAD_ANSWERS: dict[str, tuple[bytes, list[str]]] = {
    "label 2": (GOOD_ANS.replace("\n1,1,", "\n1,2,").encode(), ["'is_listened'", "0 or 1", "'2'"]),
    "label 0.5": (GOOD_ANS.replace("\n1,1,", "\n1,0.5,").encode(), ["'0.5'"]),
    "one class": (GOOD_ANS.replace("\n1,1,", "\n1,0,").replace("\n2,1,", "\n2,0,").encode(), ["both"]),
    "p_true above 1": (GOOD_ANS.replace("0.8", "1.01").encode(), ["'p_true'", "'1.01'"]),
    "p_true text": (GOOD_ANS.replace("0.8", "x").encode(), ["'p_true'", "'x'"]),
    "empty": (b"", ["empty answers file"]),
    "binary": (b"\x00\x01\x02garbage\xff", ["binary"]),
    "non-UTF-8": (b"sample_id,is_listened\n0,\xff\xfe\n", ["non-UTF-8"]),
    "header only": (b"sample_id,is_listened,p_true\n", ["no rows"]),
    "missing label": (b"sample_id,p_true\n0,0.5\n", ["lacks", "is_listened"]),
}


def _score(tmp: Path, sub: bytes, ans: bytes, as_json: bool) -> tuple[int, str, str]:
    (tmp / "sub.csv").write_bytes(sub)
    (tmp / "ans.csv").write_bytes(ans)
    args = ["score", str(tmp / "sub.csv"), "--answers", str(tmp / "ans.csv")]
    r = runner.invoke(app, [*args, "--json"] if as_json else args)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r.exit_code, r.stdout, r.stderr


def _check_refusal(code: int, out: str, err: str, words: list[str], as_json: bool) -> None:
    assert code == 2, out + err
    if as_json:
        message = json.loads(out)["error"]["message"]
    else:
        assert out == ""
        lines = err.splitlines()
        assert lines[0].startswith("error:") and all(line.startswith("  ") for line in lines[1:]), err
        message = lines[0]
    assert "\n" not in message and "np." not in message and "Traceback" not in message
    for word in words:
        assert word in message, (word, message)


def test_a_good_pair_scores(tmp_path: Path) -> None:
    code, out, _ = _score(tmp_path, GOOD_SUB.encode(), GOOD_ANS.encode(), as_json=True)
    assert code == 0 and json.loads(out) == {"auc": 1.0, "n": 4, "oracle_auc": 1.0}


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("case", list(BAD_SUBMISSIONS))
def test_bad_submissions_are_refused(tmp_path: Path, case: str, as_json: bool) -> None:
    content, words = BAD_SUBMISSIONS[case]
    _check_refusal(*_score(tmp_path, content, GOOD_ANS.encode(), as_json), words, as_json)


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("case", list(BAD_ANSWERS))
def test_bad_answers_are_refused(tmp_path: Path, case: str, as_json: bool) -> None:
    content, words = BAD_ANSWERS[case]
    _check_refusal(*_score(tmp_path, GOOD_SUB.encode(), content, as_json), words, as_json)


def test_json_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    code, out, _ = _score(tmp_path, GOOD_SUB.replace("0.9", "7").encode(), GOOD_ANS.encode(), as_json=True)
    error = json.loads(out)["error"]
    assert code == 2 and error["file"] == str(tmp_path / "sub.csv")
    assert (error["line"], error["column"], error["found"], error["count"]) == (3, "is_listened", "'7'", 1)
