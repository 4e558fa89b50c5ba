"""A seeded English sentence generator with a fixed vocabulary; a library, not a step.

Used by `python -m asrsweep.data.prepare_demo --config C --outdir D` for transcripts and LM text.

A small phrase-structure grammar: templates over word classes, with agreement kept simple
(plural nouns after numbers above one). Sentences are lowercase words from `vocabulary()`.
The structure (templates, collocations, number phrases) is what an n-gram LM can learn.
"""

from __future__ import annotations

import random
import re

NAMES = """alice bob carol david emma frank grace henry isabel jack kate leo maria nina oscar paul
rachel sam tina victor wendy zoe oliver lucy peter sarah tom anna james laura""".split()
PLACES = """london paris berlin madrid rome vienna prague dublin lisbon oslo boston chicago denver
seattle toronto sydney tokyo cairo delhi moscow""".split()
ROOMS = "kitchen garden office library bedroom hallway garage station market school".split()
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
MONTHS = "january february march april may june july august september october november december".split()
TIMES = "morning afternoon evening night".split()
COLOURS = "red blue green yellow black white brown orange purple pink grey golden silver".split()
ADJECTIVES = """big small old new heavy light cheap expensive broken clean dirty empty full warm
cold soft hard quiet loud bright dark round square long short strange lovely useful tiny""".split()
# (singular, plural)
OBJECTS = [
    ("box", "boxes"), ("book", "books"), ("cup", "cups"), ("chair", "chairs"), ("table", "tables"),
    ("lamp", "lamps"), ("bottle", "bottles"), ("bag", "bags"), ("key", "keys"), ("coat", "coats"),
    ("hat", "hats"), ("shoe", "shoes"), ("letter", "letters"), ("phone", "phones"), ("clock", "clocks"),
    ("pen", "pens"), ("plate", "plates"), ("ball", "balls"), ("car", "cars"), ("bike", "bikes"),
    ("apple", "apples"), ("orange", "oranges"), ("sandwich", "sandwiches"), ("ticket", "tickets"),
    ("basket", "baskets"), ("window", "windows"), ("door", "doors"), ("map", "maps"), ("card", "cards"),
    ("glass", "glasses"), ("knife", "knives"), ("spoon", "spoons"), ("candle", "candles"),
    ("picture", "pictures"), ("blanket", "blankets"), ("umbrella", "umbrellas"), ("guitar", "guitars"),
    ("camera", "cameras"), ("radio", "radios"), ("pillow", "pillows"),
]
ANIMALS = [
    ("dog", "dogs"), ("cat", "cats"), ("horse", "horses"), ("bird", "birds"), ("fish", "fish"),
    ("rabbit", "rabbits"), ("mouse", "mice"), ("sheep", "sheep"), ("cow", "cows"), ("duck", "ducks"),
]
FURNITURE = "shelf desk floor bench sofa bed counter cupboard".split()
# (base, past, third person, ing)
VERBS = [
    ("buy", "bought", "buys", "buying"), ("sell", "sold", "sells", "selling"),
    ("find", "found", "finds", "finding"), ("lose", "lost", "loses", "losing"),
    ("carry", "carried", "carries", "carrying"), ("paint", "painted", "paints", "painting"),
    ("clean", "cleaned", "cleans", "cleaning"), ("open", "opened", "opens", "opening"),
    ("close", "closed", "closes", "closing"), ("move", "moved", "moves", "moving"),
    ("bring", "brought", "brings", "bringing"), ("take", "took", "takes", "taking"),
    ("need", "needed", "needs", "needing"), ("want", "wanted", "wants", "wanting"),
    ("like", "liked", "likes", "liking"), ("see", "saw", "sees", "seeing"),
    ("hide", "hid", "hides", "hiding"), ("fix", "fixed", "fixes", "fixing"),
    ("borrow", "borrowed", "borrows", "borrowing"), ("drop", "dropped", "drops", "dropping"),
]
TRAVEL = [("visit", "visited"), ("leave", "left"), ("reach", "reached")]
UNITS = "one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINALS = """first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth
thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth""".split()
ORDINALS += ["twenty first", "twenty second", "thirtieth"]
ADVERBS = "quickly slowly carefully quietly happily suddenly finally again".split()
PREPOSITIONS = ["on", "under", "behind", "next to", "near", "inside", "beside"]

TEMPLATES = [
    "{name} {past} the {adj} {obj} in the {room}",
    "{name} {past} {num_pl} {colour} {objs} on {day}",
    "the {colour} {obj} is {prep} the {furniture}",
    "please put the {adj} {obj} {prep} the {furniture}",
    "please {verb} the {colour} {obj} before {day} {time}",
    "{name} and {name2} {past} {num_pl} {animals} in {place}",
    "how many {objs} did {name} {verb} in {place}",
    "{name} will {travel} {place} on {day} the {ordinal} of {month}",
    "the train to {place} leaves at {hour} {clock}",
    "{name} {travelled} {place} in {month} with {name2}",
    "there are {num_pl} {adj} {objs} in the {room}",
    "there is one {colour} {animal} {prep} the {furniture}",
    "{name} {third} {adj} {objs} and {colour} {objs}",
    "{name} is {ing} the {obj} {adverb}",
    "my {animal} {past} the {colour} {obj} {adverb}",
    "can you {verb} {num_pl} {objs} for {name}",
    "{name} paid {money} for the {adj} {colour} {obj}",
    "the {ordinal} {obj} was {adj} and {adj2}",
    "we met {name} at the {room} on {day} {time}",
    "call {name} at {hour} {clock} on {day}",
    "{name} lives in {place} with {num_pl} {animals}",
    "do not {verb} the {obj} in the {room}",
    "{name} said the {obj} was {prep} the {furniture}",
    "it is {hour} {clock} in {place} and {hour2} {clock} in {place2}",
]


def number_words(n: int) -> str:
    """Spell 1 ≤ n ≤ 999 in words: 342 → 'three hundred and forty two'."""
    if not 1 <= n <= 999:
        raise ValueError(f"number out of range: {n}")
    parts = []
    if n >= 100:
        parts.append(f"{UNITS[n // 100 - 1]} hundred")
        n %= 100
        if n:
            parts.append("and")
    if n >= 20:
        parts.append(TENS[n // 10 - 2] + (f" {UNITS[n % 10 - 1]}" if n % 10 else ""))
    elif n >= 10:
        parts.append(TEENS[n - 10])
    elif n:
        parts.append(UNITS[n - 1])
    return " ".join(parts)


def _slots(rng: random.Random) -> dict[str, str]:
    """Draw one filler for every template slot (unused ones are simply ignored)."""
    obj, objs = rng.choice(OBJECTS)
    animal, animals = rng.choice(ANIMALS)
    verb = rng.choice(VERBS)
    travel = rng.choice(TRAVEL)
    name, name2 = rng.sample(NAMES, 2)
    place, place2 = rng.sample(PLACES, 2)
    adj, adj2 = rng.sample(ADJECTIVES, 2)
    dollars = rng.choice([rng.randint(2, 20), rng.randint(21, 999)])
    money = f"{number_words(dollars)} dollars" if rng.random() < 0.7 else f"{number_words(dollars)} pounds"
    return {
        "name": name, "name2": name2, "place": place, "place2": place2, "room": rng.choice(ROOMS),
        "day": rng.choice(DAYS), "month": rng.choice(MONTHS), "time": rng.choice(TIMES),
        "colour": rng.choice(COLOURS), "adj": adj, "adj2": adj2, "obj": obj, "objs": objs,
        "animal": animal, "animals": animals, "furniture": rng.choice(FURNITURE),
        "verb": verb[0], "past": verb[1], "third": verb[2], "ing": verb[3],
        "travel": travel[0], "travelled": travel[1], "num_pl": number_words(rng.randint(2, 99)),
        "ordinal": rng.choice(ORDINALS),
        "hour": number_words(rng.randint(1, 12)), "hour2": number_words(rng.randint(1, 12)),
        "clock": rng.choice(["o'clock", "in the morning", "in the evening", "at night"]),
        "prep": rng.choice(PREPOSITIONS), "adverb": rng.choice(ADVERBS), "money": money,
    }


def sentence(rng: random.Random) -> str:
    """One random sentence (lowercase words, single spaces) drawn with `rng`."""
    return rng.choice(TEMPLATES).format(**_slots(rng))


def sentences(seed: int, count: int) -> list[str]:
    """`count` sentences from a generator seeded with `seed` (duplicates possible)."""
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(count)]


def unique_sentences(seed: int, count: int, exclude: set[str] = frozenset()) -> list[str]:
    """`count` distinct sentences not in `exclude`, in generation order (deterministic)."""
    rng = random.Random(seed)
    seen, out = set(exclude), []
    for _ in range(count * 50):
        if len(out) == count:
            break
        text = sentence(rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
    if len(out) < count:
        raise ValueError(f"grammar produced only {len(out)} distinct sentences, {count} requested")
    return out


def vocabulary() -> set[str]:
    """Every word the grammar can produce (templates' own words included)."""
    words: set[str] = set()
    lists = [NAMES, PLACES, ROOMS, DAYS, MONTHS, TIMES, COLOURS, ADJECTIVES, FURNITURE, UNITS, TEENS,
             TENS, ORDINALS, ADVERBS, PREPOSITIONS, ["hundred", "and", "dollars", "pounds",
             "o'clock", "in the morning", "in the evening", "at night"]]
    lists += [list(v) for v in VERBS] + [list(t) for t in TRAVEL] + [list(o) for o in OBJECTS + ANIMALS]
    for items in lists:
        for item in items:
            words.update(item.split())
    for template in TEMPLATES:
        words.update(w for w in re.sub(r"\{\w+\}", " ", template).split())
    return words
