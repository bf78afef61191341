"""The benchmark's sentences, shared by both sides: N deterministic English-like sentences
of 8 to 40 words (printed one a line when run as a script)."""
import random
import sys

WORDS = ("the a model learns from examples while data quality matters more than size every "
         "expert answers questions about science history code and math with careful reasoning").split()


def sentences(n):
    rng = random.Random(5)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40))) + "." for _ in range(n)]


if __name__ == "__main__":
    for s in sentences(int(sys.argv[1])):
        print(s)
