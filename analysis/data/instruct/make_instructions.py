"""Writes instructions.jsonl (run from anywhere: python analysis/data/instruct/make_instructions.py)."""

import json
import random
from pathlib import Path

R = random.Random(14)
rows: list[dict[str, str]] = []


def add(cat, prompt, answer, response):
    rows.append({"prompt": prompt, "response": response, "answer": str(answer), "category": cat})


# arithmetic (computed)
for _ in range(12):
    a, b = R.randint(12, 99), R.randint(12, 99)
    add("arithmetic", f"What is {a} plus {b}?", a + b, f"{a} plus {b} is {a + b}.")
for _ in range(8):
    a, b = R.randint(50, 200), R.randint(1, 49)
    add("arithmetic", f"What is {a} minus {b}?", a - b, f"{a} minus {b} is {a - b}.")
for _ in range(10):
    a, b = R.randint(3, 19), R.randint(3, 12)
    add("arithmetic", f"What is {a} times {b}?", a * b, f"{a} times {b} is {a * b}.")
for _ in range(5):
    b, q = R.randint(2, 12), R.randint(3, 15)
    add("arithmetic", f"What is {b * q} divided by {b}?", q, f"{b * q} divided by {b} is {q}.")
# conversions
for km in (2, 5, 7, 12):
    add(
        "conversion",
        f"How many metres are in {km} kilometres?",
        km * 1000,
        f"There are {km * 1000} metres in {km} kilometres.",
    )
for h in (2, 3, 5):
    add("conversion", f"How many minutes are in {h} hours?", h * 60, f"There are {h * 60} minutes in {h} hours.")
for kg in (3, 4, 9):
    add(
        "conversion",
        f"How many grams are in {kg} kilograms?",
        kg * 1000,
        f"There are {kg * 1000} grams in {kg} kilograms.",
    )
# word tasks
words = [
    "garden",
    "planet",
    "window",
    "silver",
    "rocket",
    "little",
    "forest",
    "basket",
    "summer",
    "pencil",
    "orange",
    "bridge",
    "button",
    "castle",
    "dragon",
]
for w in words[:8]:
    add("words", f"Spell the word '{w}' backwards.", w[::-1], f"'{w}' spelled backwards is '{w[::-1]}'.")
for w in words[8:15]:
    add("words", f"Write the word '{w}' in capital letters.", w.upper(), f"In capital letters, '{w}' is '{w.upper()}'.")
for w, ch in (("banana", "a"), ("committee", "t"), ("mississippi", "s"), ("balloon", "l"), ("bookkeeper", "e")):
    n = w.count(ch)
    add(
        "words",
        f"How many times does the letter '{ch}' appear in the word '{w}'?",
        n,
        f"The letter '{ch}' appears {n} times in '{w}'.",
    )
for ws in (
    ["pear", "apple", "mango"],
    ["zebra", "lion", "cat", "dog"],
    ["violet", "blue", "red"],
    ["tuesday", "monday", "friday"],
    ["oak", "elm", "birch", "ash"],
):
    s = ", ".join(sorted(ws))
    add("lists", f"Sort these words alphabetically: {', '.join(ws)}.", s, f"In alphabetical order: {s}.")
for ns in ([7, 2, 9, 4], [15, 3, 8], [21, 5, 13, 1], [6, 11, 2]):
    s = ", ".join(map(str, sorted(ns)))
    add(
        "lists",
        f"Sort these numbers from smallest to largest: {', '.join(map(str, ns))}.",
        s,
        f"From smallest to largest: {s}.",
    )
for ns in ([4, 17, 9], [23, 8, 31, 12], [5, 2, 14]):
    add(
        "lists",
        f"What is the largest number in this list: {', '.join(map(str, ns))}?",
        max(ns),
        f"The largest number in the list is {max(ns)}.",
    )

capitals = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Canada", "Ottawa"),
    ("Australia", "Canberra"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Norway", "Oslo"),
    ("Portugal", "Lisbon"),
    ("Greece", "Athens"),
    ("Peru", "Lima"),
    ("Ireland", "Dublin"),
    ("Poland", "Warsaw"),
    ("Argentina", "Buenos Aires"),
    ("Thailand", "Bangkok"),
    ("Sweden", "Stockholm"),
    ("Austria", "Vienna"),
    ("Chile", "Santiago"),
]
for c, cap in capitals:
    add("geography", f"What is the capital of {c}?", cap, f"The capital of {c} is {cap}.")

facts = [
    ("science", "What is the chemical symbol for gold?", "Au", "The chemical symbol for gold is Au."),
    ("science", "What is the chemical symbol for sodium?", "Na", "The chemical symbol for sodium is Na."),
    (
        "science",
        "What gas do plants absorb from the air for photosynthesis?",
        "carbon dioxide",
        "Plants absorb carbon dioxide from the air for photosynthesis.",
    ),
    (
        "science",
        "At what temperature in degrees Celsius does water boil at sea level?",
        "100",
        "At sea level, water boils at 100 degrees Celsius.",
    ),
    (
        "science",
        "At what temperature in degrees Celsius does water freeze?",
        "0",
        "Water freezes at 0 degrees Celsius.",
    ),
    ("science", "Which planet is closest to the Sun?", "Mercury", "Mercury is the planet closest to the Sun."),
    ("science", "Which planet is known as the Red Planet?", "Mars", "Mars is known as the Red Planet."),
    (
        "science",
        "What is the largest planet in our solar system?",
        "Jupiter",
        "Jupiter is the largest planet in our solar system.",
    ),
    ("science", "How many legs does a spider have?", "8", "A spider has 8 legs."),
    ("science", "How many legs does an insect have?", "6", "An insect has 6 legs."),
    ("science", "What is the hardest natural substance?", "diamond", "Diamond is the hardest natural substance."),
    (
        "science",
        "What organ pumps blood through the human body?",
        "heart",
        "The heart pumps blood through the human body.",
    ),
    ("science", "What is H2O commonly called?", "water", "H2O is commonly called water."),
    ("science", "How many bones are in the adult human body?", "206", "The adult human body has 206 bones."),
    ("science", "What force keeps us on the ground?", "gravity", "Gravity keeps us on the ground."),
    ("science", "What is the closest star to the Earth?", "the Sun", "The closest star to the Earth is the Sun."),
    ("science", "What do bees make from nectar?", "honey", "Bees make honey from nectar."),
    (
        "science",
        "What is the main gas in the air we breathe?",
        "nitrogen",
        "The main gas in the air we breathe is nitrogen.",
    ),
    (
        "science",
        "How many days does the Earth take to orbit the Sun?",
        "365",
        "The Earth takes about 365 days to orbit the Sun.",
    ),
    (
        "science",
        "What is the freezing point of water in degrees Fahrenheit?",
        "32",
        "Water freezes at 32 degrees Fahrenheit.",
    ),
    ("language", "What is the plural of 'mouse'?", "mice", "The plural of 'mouse' is 'mice'."),
    ("language", "What is the plural of 'child'?", "children", "The plural of 'child' is 'children'."),
    ("language", "What is the past tense of 'run'?", "ran", "The past tense of 'run' is 'ran'."),
    ("language", "What is the past tense of 'go'?", "went", "The past tense of 'go' is 'went'."),
    ("language", "What is the opposite of 'hot'?", "cold", "The opposite of 'hot' is 'cold'."),
    ("language", "What is the opposite of 'early'?", "late", "The opposite of 'early' is 'late'."),
    ("language", "What is the opposite of 'ancient'?", "modern", "The opposite of 'ancient' is 'modern'."),
    ("language", "What is the opposite of 'up'?", "down", "The opposite of 'up' is 'down'."),
    ("language", "What is the plural of 'tooth'?", "teeth", "The plural of 'tooth' is 'teeth'."),
    ("language", "What is the comparative form of 'good'?", "better", "The comparative form of 'good' is 'better'."),
    (
        "language",
        "How many vowels are in the English alphabet (not counting y)?",
        "5",
        "There are 5 vowels in the English alphabet: a, e, i, o and u.",
    ),
    (
        "language",
        "What is the first letter of the English alphabet?",
        "a",
        "The first letter of the English alphabet is 'a'.",
    ),
    ("language", "Translate 'thank you' into French.", "merci", "'Thank you' in French is 'merci'."),
    ("language", "Translate 'hello' into Spanish.", "hola", "'Hello' in Spanish is 'hola'."),
    ("language", "Translate 'cat' into German.", "Katze", "'Cat' in German is 'Katze'."),
    ("knowledge", "How many days are there in a week?", "7", "There are 7 days in a week."),
    ("knowledge", "How many months are there in a year?", "12", "There are 12 months in a year."),
    ("knowledge", "How many days are in a leap year?", "366", "A leap year has 366 days."),
    ("knowledge", "How many sides does a hexagon have?", "6", "A hexagon has 6 sides."),
    ("knowledge", "How many sides does a triangle have?", "3", "A triangle has 3 sides."),
    ("knowledge", "How many minutes are in an hour?", "60", "There are 60 minutes in an hour."),
    ("knowledge", "How many continents are there?", "7", "There are 7 continents."),
    ("knowledge", "What is the largest ocean on Earth?", "Pacific", "The Pacific is the largest ocean on Earth."),
    ("knowledge", "What is the longest river in Africa?", "Nile", "The Nile is the longest river in Africa."),
    (
        "knowledge",
        "What is the tallest mountain in the world?",
        "Mount Everest",
        "Mount Everest is the tallest mountain in the world.",
    ),
    (
        "knowledge",
        "Who wrote 'Romeo and Juliet'?",
        "William Shakespeare",
        "'Romeo and Juliet' was written by William Shakespeare.",
    ),
    ("knowledge", "Who painted the Mona Lisa?", "Leonardo da Vinci", "The Mona Lisa was painted by Leonardo da Vinci."),
    ("knowledge", "What colour do you get by mixing blue and yellow?", "green", "Mixing blue and yellow gives green."),
    ("knowledge", "What colour do you get by mixing red and white?", "pink", "Mixing red and white gives pink."),
    ("knowledge", "In which country are the pyramids of Giza?", "Egypt", "The pyramids of Giza are in Egypt."),
    (
        "knowledge",
        "What language is mainly spoken in Brazil?",
        "Portuguese",
        "The main language spoken in Brazil is Portuguese.",
    ),
    ("knowledge", "What currency is used in Japan?", "yen", "Japan uses the yen."),
    ("knowledge", "What is the square root of 81?", "9", "The square root of 81 is 9."),
    ("knowledge", "What is 10 squared?", "100", "10 squared is 100."),
    ("knowledge", "What is half of 50?", "25", "Half of 50 is 25."),
    (
        "knowledge",
        "Which animal is known as the king of the jungle?",
        "lion",
        "The lion is known as the king of the jungle.",
    ),
    ("knowledge", "What is the largest mammal?", "blue whale", "The blue whale is the largest mammal."),
    ("knowledge", "What is the fastest land animal?", "cheetah", "The cheetah is the fastest land animal."),
    ("knowledge", "Which season comes after winter?", "spring", "Spring comes after winter."),
    ("knowledge", "Which month comes after March?", "April", "April comes after March."),
    ("code", "What does the Python expression len('hello') return?", "5", "len('hello') returns 5."),
    ("code", "What does the Python expression 7 // 2 return?", "3", "7 // 2 returns 3."),
    ("code", "What does the Python expression 2 ** 5 return?", "32", "2 ** 5 returns 32."),
    ("code", "What does the Python expression 'abc'.upper() return?", "'ABC'", "'abc'.upper() returns 'ABC'."),
    (
        "code",
        "What does the Python expression sorted([3, 1, 2]) return?",
        "[1, 2, 3]",
        "sorted([3, 1, 2]) returns [1, 2, 3].",
    ),
    ("code", "What does the Python expression 10 % 3 return?", "1", "10 % 3 returns 1."),
    ("code", "Which keyword defines a function in Python?", "def", "The keyword 'def' defines a function in Python."),
    ("code", "What is the binary representation of the number 5?", "101", "The number 5 in binary is 101."),
]
for f in facts:
    add(*f)
assert len({r["prompt"] for r in rows}) == len(rows)
print(len(rows), {c: sum(r["category"] == c for r in rows) for c in {r["category"] for r in rows}})
with open(Path(__file__).resolve().parent / "instructions.jsonl", "w", encoding="utf-8") as out:
    for r in rows:
        out.write(json.dumps(r, ensure_ascii=False) + "\n")
