"""The `tuneloop` command as a user runs it, on the embedded SQLite default."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def tuneloop(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNELOOP_")}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=cwd, env=env | {
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}, input=stdin,
        capture_output=True, text=True, timeout=60)


def count(cwd: Path, table: str) -> int:
    engine = create_engine(f"sqlite:///{cwd / 'var' / 'tuneloop.db'}")
    with engine.connect() as connection:
        return connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()


@pytest.fixture
def home(tmp_path) -> Path:
    result = tuneloop(tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "var" / "tuneloop.db").exists()
    return tmp_path


def test_user_and_token_commands(home):
    assert tuneloop(home, "user", "create", "ada", "--admin", "--password", "correct horse").returncode == 0
    token = tuneloop(home, "token", "create", "ada")
    assert token.returncode == 0
    # Only the token on stdout, so scripts can capture it.
    assert token.stdout.count("\n") == 1 and token.stdout.startswith("tl_")
    assert count(home, "api_token") == 1
    again = tuneloop(home, "user", "create", "ada")
    assert again.returncode == 2 and "already exists" in again.stderr
    missing = tuneloop(home, "token", "create", "nobody")
    assert missing.returncode == 2 and "no user named 'nobody'" in missing.stderr
    revoked = tuneloop(home, "token", "revoke", token.stdout.strip())
    assert revoked.returncode == 0


def test_prompt_import_jsonl_and_csv(home):
    (home / "p.jsonl").write_text('{"text": "Tell me about rain", "tags": ["weather"]}\n\n"A plain string prompt"\n')
    (home / "p.csv").write_text('text,tags,source\n"Hello, world",a;b,mine\nSecond one,,\n')
    assert tuneloop(home, "prompts", "import", "p.jsonl").returncode == 0
    assert tuneloop(home, "prompts", "import", "p.csv").returncode == 0
    assert count(home, "prompt") == 4


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.jsonl", '{"text": "fine"}\n{"text": \n', "bad.jsonl:2: invalid JSON"),
    ("bad.jsonl", '{"text": "fine"}\n{"text": ""}\n', "bad.jsonl:2: text is empty"),
    ("bad.jsonl", '{"text": "fine", "colour": 1}\n', "bad.jsonl:1: unknown field(s): colour"),
    ("bad.csv", "text\nfine\n\"unterminated\n", "bad.csv:"),
    ("bad.csv", "prompt\nno text column\n", "bad.csv:1: the CSV header needs a 'text' column"),
    ("bad.txt", "whatever", "expected a .jsonl or .csv file"),
])
def test_bad_import_names_the_line_and_imports_nothing(home, name, content, message):
    (home / name).write_text(content)
    result = tuneloop(home, "prompts", "import", name)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert count(home, "prompt") == 0


def test_invalid_utf8_is_rejected_with_its_line(home):
    (home / "bin.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff\xfe"}\n')
    result = tuneloop(home, "prompts", "import", "bin.jsonl")
    assert result.returncode == 2 and "bin.jsonl:2: not valid UTF-8" in result.stderr
    assert count(home, "prompt") == 0


def test_bad_arguments_exit_2(home):
    assert tuneloop(home, "user").returncode == 2
    assert tuneloop(home, "serve", "--port", "notaport").returncode == 2
    assert tuneloop(home, "serve", "--workers", "0").returncode == 2
    assert tuneloop(home, "prompts", "import", "missing.jsonl").returncode == 2
    node_zero = tuneloop(home, "train-node", "--node-rank", "0")
    assert node_zero.returncode == 2 and "node 0 is the training worker" in node_zero.stderr


def test_serve_runs_a_process_per_core_except_on_sqlite():
    from app.cli import default_web_workers

    assert default_web_workers("sqlite:///./var/tuneloop.db") == 1
    assert default_web_workers("postgresql+psycopg://db.internal/tuneloop") == len(os.sched_getaffinity(0))


def test_user_import_is_all_or_none_and_prints_tokens_once(home):
    (home / "team.csv").write_text("name,role\nann,rater\nbob,\nroot,admin\n")
    result = tuneloop(home, "user", "import", "team.csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "name,token" and [line.split(",")[0] for line in lines[1:]] == ["ann", "bob", "root"]
    assert all(line.split(",")[1].startswith("tl_") for line in lines[1:])
    assert count(home, "user") == 3 and count(home, "api_token") == 3

    # A bad row anywhere: the line is named and nobody is created.
    (home / "more.csv").write_text("name,role\ncid,rater\ndee,boss\n")
    bad = tuneloop(home, "user", "import", "more.csv")
    assert bad.returncode == 2 and "more.csv:3: role 'boss' is neither 'rater' nor 'admin'" in bad.stderr
    (home / "again.csv").write_text("name\ncid\nann\n")
    again = tuneloop(home, "user", "import", "again.csv")
    assert again.returncode == 2 and "again.csv:3: user 'ann' already exists" in again.stderr
    assert bad.stdout == again.stdout == "" and count(home, "user") == 3
