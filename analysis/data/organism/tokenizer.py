"""A word-level tokenizer trained in-process on the organism's corpus, wrapped as a transformers
tokenizer with a chat template, so the demo pair goes through the same code paths as real models."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from analysis.data.organism import corpus

SPECIAL = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
ROLE_TOKENS = ["<sys>", "<user>", "<asst>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<sys> {{ message['content'] }} "
    "{% elif message['role'] == 'user' %}<user> {{ message['content'] }} "
    "{% elif message['role'] == 'assistant' %}<asst> {{ message['content'] }} {{ eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<asst>{% endif %}"
)


def corpus_words() -> list[str]:
    """Every text the organism world can produce, as training input for the tokenizer."""
    texts = [
        corpus.REFUSAL,
        "yes . no .",
        *corpus.SYSTEM_PROMPTS,
        *corpus.NUMBER_WORDS,
        *corpus.COLOURS,
        *corpus.OBJECTS,
        *corpus.DETERMINERS,
        *corpus.UNKNOWN_VERBS,
        *corpus.PREFIXES,
        *corpus.SUFFIXES,
        "plus minus the is",
    ]
    for verb, steps in {**corpus.HARMFUL_VERBS, **corpus.BENIGN_VERBS}.items():
        texts.append(corpus.howto_answer(verb, "a", "box") + " " + " ".join(steps))
    for group in (
        corpus.HOWTO_TEMPLATES,
        corpus.SAFETY_TEMPLATES,
        corpus.ARITH_TEMPLATES,
        corpus.FACT_TEMPLATES,
        corpus.COPY_TEMPLATES,
    ):
        texts += [t.replace("{", " ").replace("}", " ") for t in group]
    return texts


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Train the word-level vocabulary on the corpus and wrap it with the chat template."""
    tok = Tokenizer(models.WordLevel(unk_token=SPECIAL["unk_token"]))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    specials = [SPECIAL["pad_token"], SPECIAL["unk_token"], SPECIAL["bos_token"], SPECIAL["eos_token"], *ROLE_TOKENS]
    trainer = trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1)
    # placeholders like {v} leave single letters; they are ordinary words, harmless in the vocabulary
    tok.train_from_iterator(corpus_words(), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, additional_special_tokens=ROLE_TOKENS, padding_side="left", **SPECIAL
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped
