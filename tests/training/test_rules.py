import random
import subprocess
import sys
from pathlib import Path

from simulation.rules import RULES, prefer, satisfaction, topic_of


def test_rules_prefer_what_they_say():
    prompt = "Tell me about the ocean."
    assert prefer("positive", prompt, "The ocean is lovely.", "The ocean is awful.") == "a"
    assert prefer("shorter", prompt, "The ocean is big and blue and far away.", "The ocean is big.") == "b"
    assert prefer("topic", prompt, "The city is busy.", "The ocean is calm.") == "b"
    assert prefer("colour", prompt, "A red boat sat by the ocean.", "A boat sat by the ocean.") == "a"
    assert prefer("colour", prompt, "The ocean is calm.", "The city is calm.") == "tie"


def test_satisfaction_thresholds():
    prompt = "What do you think of the garden?"
    assert satisfaction("positive", prompt, "The garden is lovely.")
    assert not satisfaction("positive", prompt, "The garden is lovely but awful.")
    assert satisfaction("shorter", prompt, "The garden is lovely.")
    assert not satisfaction("shorter", prompt, "The garden is lovely. My friend said the garden was calm.")
    assert satisfaction("topic", prompt, "The garden is old.")
    assert satisfaction("colour", prompt, "A green bench sat beside the garden.")
    assert set(RULES) == {"positive", "shorter", "topic", "colour"}


def test_noise_answers_at_random_sometimes():
    rng = random.Random(0)
    answers = [prefer("positive", "", "lovely", "awful", noise=0.5, rng=rng) for _ in range(1000)]
    # Half the answers are coin flips, so about a quarter go the "wrong" way.
    assert 180 < answers.count("b") < 320


def test_topic_is_recovered_from_the_prompt():
    assert topic_of("Share a memory of the library.") == "library"
    assert topic_of("Hello there") is None


def test_rules_import_no_torch():
    # The web side imports the rules and must start without torch.
    check = "import sys, simulation.rules; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=Path(__file__).parents[2])
