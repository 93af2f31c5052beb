from simulation.rules import RULES, satisfaction, topic_of
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


def test_corpus_names_the_prompts_topic_at_the_share_asked_for():
    for share in (0.2, 0.6):
        examples = pretraining_examples(3000, seed=0, on_topic=share)
        rate = sum(satisfaction("topic", p, r) for p, r in examples) / len(examples)
        assert abs(rate - share) < 0.05, (share, rate)
