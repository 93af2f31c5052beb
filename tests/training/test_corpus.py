from worker.rules import RULES, satisfaction, topic_of
from worker.training.corpus import builtin_prompts, pretraining_examples


def test_builtin_prompts_are_distinct_and_carry_a_recoverable_topic():
    prompts = builtin_prompts()
    assert len({p.text for p in prompts}) == len(prompts) >= 300
    assert all(topic_of(p.text) == p.topic for p in prompts)


def test_corpus_is_deterministic_by_seed():
    assert pretraining_examples(50, seed=3) == pretraining_examples(50, seed=3)
    assert pretraining_examples(50, seed=3) != pretraining_examples(50, seed=4)


def test_corpus_satisfies_every_rule_sometimes_but_not_always():
    examples = pretraining_examples(2000, seed=0)
    for name in RULES:
        rate = sum(satisfaction(name, p, r) for p, r in examples) / len(examples)
        assert 0.1 < rate < 0.9, (name, rate)
