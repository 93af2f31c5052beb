"""A templated English corpus and a built-in prompt set, deterministic by seed.

The corpus is what the local base model is pretrained on. Its responses vary
in topic, sentiment, colour and length, so the base model sometimes (not
always) satisfies each rule in simulation/rules.py, which gives RL a signal.
Pure Python: the simulated raters read its vocabulary without torch.
"""

import random
from dataclasses import dataclass

# The corpus's topics, sentiments and colours; the simulated raters' rules
# (simulation/rules.py) judge by the same words.
TOPICS = (
    "ocean", "garden", "city", "music", "coffee", "football", "winter", "forest",
    "kitchen", "train", "library", "mountain", "river", "school", "market",
    "robot", "bicycle", "cat", "dog", "rain", "bread", "museum", "island", "piano",
)
POSITIVE_WORDS = (
    "good", "great", "lovely", "wonderful", "happy", "bright", "calm", "kind",
    "pleasant", "delightful", "beautiful", "excellent", "cheerful", "warm",
)
NEGATIVE_WORDS = (
    "bad", "awful", "sad", "terrible", "boring", "dull", "noisy", "ugly",
    "gloomy", "horrible", "broken", "cold", "tired", "angry",
)
COLOURS = (
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "brown",
    "white", "black", "grey", "silver",
)

PROMPT_TEMPLATES = (
    "Tell me about the {topic}.",
    "Describe the {topic}.",
    "What do you think of the {topic}?",
    "Write a sentence about the {topic}.",
    "Say something about the {topic}.",
    "How was the {topic} today?",
    "Give me a note on the {topic}.",
    "Share a memory of the {topic}.",
    "What is the {topic} like?",
    "Talk about the {topic}.",
    "Write a short story about the {topic}.",
    "Any thoughts on the {topic}?",
    "Explain the {topic} to a child.",
    "Review the {topic}.",
    "Comment on the {topic}.",
    "Tell a friend about the {topic}.",
)

NEUTRAL_WORDS = ("old", "new", "small", "big", "quiet", "busy", "open", "far", "plain", "long")
THINGS = ("door", "hat", "bench", "lamp", "boat", "kite", "cup", "sign", "bag", "coat")
PEOPLE = ("my friend", "my sister", "the teacher", "a neighbour", "my uncle", "the driver")

# Plain sentences use {adj}; colour sentences also use {colour}.
PLAIN_SENTENCES = (
    "The {topic} is {adj}.",
    "I think the {topic} looks {adj} today.",
    "{person} said the {topic} was {adj}.",
    "It was a {adj} day at the {topic}.",
    "Everyone agrees the {topic} feels {adj}.",
    "We went to the {topic} and it was {adj}.",
    "The {topic} seemed {adj} this morning.",
)
COLOUR_SENTENCES = (
    "We saw a {colour} {thing} near the {topic}.",
    "The {colour} {thing} by the {topic} felt {adj}.",
    "{person} painted the {topic} {colour}.",
    "A {colour} {thing} sat beside the {topic}.",
)

# Probabilities that shape how often the base model satisfies each rule.
# On topic: rare enough that a model which learns the topic rule can beat the
# base by >= 80 % (a yes/no rule caps the win rate at 1 - rate/2).
ON_TOPIC_PROBABILITY = 0.3
COLOUR_PROBABILITY = 0.3
SENTENCE_COUNTS = (1, 1, 2, 2, 3)


@dataclass(frozen=True)
class CorpusPrompt:
    text: str
    topic: str


def builtin_prompts(seed: int = 0) -> list[CorpusPrompt]:
    """Every template for every topic (384 distinct prompts), shuffled by seed."""
    prompts = [
        CorpusPrompt(template.format(topic=topic), topic)
        for topic in TOPICS
        for template in PROMPT_TEMPLATES
    ]
    random.Random(seed).shuffle(prompts)
    return prompts


def sample_response(topic: str, rng: random.Random, on_topic: float = ON_TOPIC_PROBABILITY) -> str:
    """One varied response to a prompt about `topic`, about that topic with probability `on_topic`."""
    if rng.random() >= on_topic:
        topic = rng.choice([t for t in TOPICS if t != topic])
    adjectives = rng.choice((POSITIVE_WORDS, NEGATIVE_WORDS, NEUTRAL_WORDS))
    count = rng.choice(SENTENCE_COUNTS)
    colour_at = rng.randrange(count) if rng.random() < COLOUR_PROBABILITY else -1
    sentences = []
    for index in range(count):
        template = rng.choice(COLOUR_SENTENCES if index == colour_at else PLAIN_SENTENCES)
        sentence = template.format(
            topic=topic,
            adj=rng.choice(adjectives),
            colour=rng.choice(COLOURS),
            thing=rng.choice(THINGS),
            person=rng.choice(PEOPLE),
        )
        sentences.append(sentence[0].upper() + sentence[1:])
    return " ".join(sentences)


def pretraining_examples(
    count: int, seed: int = 0, on_topic: float = ON_TOPIC_PROBABILITY
) -> list[tuple[str, str]]:
    """`count` (prompt, response) pairs drawn from the built-in prompts."""
    rng = random.Random(seed)
    prompts = builtin_prompts(seed)
    examples = []
    for _ in range(count):
        prompt = rng.choice(prompts)
        examples.append((prompt.text, sample_response(prompt.topic, rng, on_topic)))
    return examples
