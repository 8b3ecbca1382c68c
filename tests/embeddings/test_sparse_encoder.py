from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backend.embeddings.sparse import SparseEncoder, term_id, tokenize

ENCODER = SparseEncoder()


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("Reset your PASSWORD, please!", ["reset", "your", "password", "please"]),
        ("비밀번호를 재설정", ["비밀", "밀번", "번호", "호를", "재설", "설정"]),
        ("密码重置", ["密码", "码重", "重置"]),
        ("パスワードを再設定", ["パス", "スワ", "ワー", "ード", "ドを", "を再", "再設", "設定"]),
        # A lone CJK character stays a unigram; Latin words next to Hangul split off.
        ("iPhone용 앱 설치", ["iphone", "용", "앱", "설치"]),
        # NFKC: full-width Latin and half-width Katakana fold to the usual forms.
        ("ＡＢＣ ﾊﾟｽ", ["abc", "パス"]),
        # "don't" -> "don" + "t": lone Latin letters are dropped, lone digits kept.
        ("don't use v 2", ["don", "use", "2"]),
        ("", []),
        ("?! ...", []),
    ],
)
def test_tokenize(text: str, terms: list[str]) -> None:
    assert tokenize(text) == terms


def test_query_weights_each_unique_term_once() -> None:
    vector = ENCODER.encode_query("refund refund the refund invoice")
    assert len(vector.indices) == 3
    assert vector.values == [1.0, 1.0, 1.0]
    assert vector.indices == sorted(vector.indices)


def test_document_weights_saturate_and_prefer_short_documents() -> None:
    def weight(text: str, term: str) -> float:
        vector = ENCODER.encode_document(text)
        return vector.values[vector.indices.index(term_id(term))]

    once = weight("refund " + "filler " * 10, "refund")
    twice = weight("refund refund " + "filler " * 9, "refund")
    assert once < twice < 2 * once
    padded = weight("refund " + "filler " * 200, "refund")
    assert padded < once
    # k1 bounds every weight at k1 + 1 however often the term occurs.
    assert weight("refund " * 1000, "refund") < ENCODER.k1 + 1


def test_empty_text_gives_an_empty_vector() -> None:
    assert ENCODER.encode_document("").is_empty
    assert ENCODER.encode_query("...").is_empty


def test_term_ids_never_change_between_releases() -> None:
    # Indexed sparse vectors use these ids: a change would orphan every stored document.
    assert term_id("password") == 515265974
    assert term_id("비밀") == 471969162
    assert all(0 <= term_id(t) < 2**31 for t in ("a", "zz", "設定", "x" * 500))


def test_encoding_is_identical_in_other_processes() -> None:
    text = "Password reset 비밀번호 재설정 パスワード 密码重置 Ünïcödé"
    here = ENCODER.encode_document(text)
    script = (
        "import json, sys\n"
        "from backend.embeddings.sparse import SparseEncoder\n"
        "v = SparseEncoder().encode_document(sys.argv[1])\n"
        "print(json.dumps([v.indices, v.values]))\n"
    )
    for seed in ("1", "2"):
        # Different hash seeds: Python's hash() would give different ids in each.
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script, text],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        indices, values = json.loads(result.stdout)
        assert indices == here.indices
        assert values == here.values
