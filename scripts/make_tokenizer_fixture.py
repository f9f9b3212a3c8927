#!/usr/bin/env python3
"""Writes tests/model/fixtures/tokenizer_llamacpp.json: token ids from llama.cpp (llama-cpp-python,
vocab-only load) for a corpus of >= 500 strings, and the chat template rendered by jinja2 (as
transformers does) for a few conversations. CI checks our tokenizer against this file without building
llama.cpp; rerun this script (needs `pip install llama-cpp-python jinja2`) when the corpus or model changes.

  .venv/bin/python scripts/make_tokenizer_fixture.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ENGLISH = [
    "Hello world", "Hello, world!", "The quick brown fox jumps over the lazy dog.",
    "What is paged attention?", "I can't believe it's not butter.", "They're here; we'll see, you've won, I'm done, he'd go.",
    "SHOUTING IN CAPS IS RUDE", "CamelCaseWordsAndSnake_case_words", "e.g. i.e. etc. Mr. Smith vs. Dr. Jones",
    "A sentence with trailing space ", " leading space", "double  space", "it's", "IT'S", "'s", "don't stop",
    "Once upon a time, in a land far, far away, there lived a small dragon who loved to read.",
    "Paged attention stores the KV cache in fixed-size blocks.", "hyphen-ated words and em—dashes – en dashes",
    "Quotes: \"double\" 'single' `back`", "(parentheses) [brackets] {braces} <angles>",
    "Email me at someone@example.com or visit https://example.org/path?q=1&r=2#frag",
    "a", "I", "x y z", "ab", "The end.", "...", "?!", "Mixed punctuation!?!...;;::",
]
CODE = [
    "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }",
    "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)", "const x = () => { return {a: 1, b: [2, 3]}; };",
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;", "<div class=\"box\"><p>Hi</p></div>",
    "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}", "x+=1;y-=2;z*=3;w/=4;", "a && b || !c",
    "    indented four\n        indented eight\n", "if x == 1:\n\tpass\nelse:\n\tpass", "std::vector<int> v{1,2,3};",
    "// comment\n/* block */\n# hash", "$ ls -la | grep foo > out.txt 2>&1", "fn main() { println!(\"{}\", 42); }",
    "lambda x: x**2", "a[::2], b[-1], c[1:3]", "@decorator\nclass Foo(Bar):\n    __slots__ = ()",
]
WHITESPACE = [
    " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t\tx", "x\t\t\t", "a \n b", "line1\nline2\n\nline4",
    "    ", "\n   \n", "word     word", " \t \t ", "end\n", "\n\n\nstart", "a\u00a0b", "tab\there", "x  \n  y",
    "\u3000full width space", "a\u2003em space", "mixed \t\n\r whitespace", "   leading and trailing   ",
]
DIGITS = [
    "0", "7", "42", "123", "1234", "12345678901234567890", "3.14159", "-273.15", "1,000,000", "2024-01-31",
    "12:30:45", "+1 (555) 123-4567", "v1.2.3", "0x1F", "1e-5", "100%", "$19.99", "abc123def456", "a1b2c3",
    "room 101", "  42  ", "1 2 3 4 5", "٣٤٥ Arabic-Indic digits", "Ⅻ roman numeral", "½ ¾ fractions", "²³ superscripts",
]
UNICODE = [
    "café naïve résumé", "Straße Größe", "Ελληνικά γράμματα", "Русский текст", "日本語のテキスト", "中文文本测试",
    "한국어 텍스트", "العربية نص", "עברית", "हिन्दी पाठ", "ไทย", "Tiếng Việt có dấu", "ñandú ÑANDÚ", "Ω≈ç√∫",
    "™ © ®", "→ ← ↑ ↓", "∀x∈ℝ: x²≥0", "ﬁ ligature", "e\u0301 combining acute", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗̻",
    "\u200bzero\u200bwidth", "Ａｂｃ fullwidth", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math", "ⓒⓘⓡⓒⓛⓔⓓ",
]
EMOJI = [
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "🔥🔥🔥", "I love 🍕!", "✅ done", "🤖 + 🧠 = 💡", "🏳️‍🌈", "⭐️⭐️",
    "emoji at end 🎉", "🎉 emoji at start", "mixed 日本 😀 text 123",
]
SPECIAL = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>",
    "text<|endoftext|>more", "<|im_start|><|im_end|>", "<|im_st", "im_start|>", "<|im_start", "<|im_start|>>",
    "<<|im_end|>", "<repo_name>pagedattn<file_sep>README.md", "<filename>main.py", "<jupyter_code>print(1)",
    " <|im_end|> ", "\n<|im_start|>assistant\n", "<|endoftext|><|endoftext|>", "<gh_stars>100",
]
CHAT = [
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nWrite a haiku about GPUs.<|im_end|>\n<|im_start|>assistant\nSilicon rivers\n<|im_end|>\n",
    "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
]

CONVERSATIONS = [
    ([{"role": "user", "content": "Hi!"}], True),
    ([{"role": "user", "content": "Hi!"}], False),
    ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a color."}], True),
    ([{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"},
      {"role": "user", "content": "And 3+3?"}], True),
    ([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}], False),
    ([{"role": "assistant", "content": "I start."}, {"role": "user", "content": "ok"}], True),
    ([{"role": "user", "content": "multi\nline\n\ncontent with <|im_end|> inside"}], True),
    ([], True),
    ([], False),
]


def corpus():
    base = ENGLISH + CODE + WHITESPACE + DIGITS + UNICODE + EMOJI + SPECIAL + CHAT
    rng = random.Random(1234)
    pools = [ENGLISH, CODE, WHITESPACE, DIGITS, UNICODE, EMOJI, SPECIAL]
    seps = ["", " ", "  ", "\n", "\t", " \n", "\n\n", ", ", "   \t"]
    out = list(base)
    while len(out) < 640:
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(2, 4))]
        text = parts[0]
        for p in parts[1:]:
            text += rng.choice(seps) + p
        out.append(text)
    # Random ASCII-ish strings stress the merge order and whitespace rules.
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789 \t\n.,;:'\"!?-_()[]{}<>/\\|@#$%^&*+=~`"
    for _ in range(60):
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out", default=str(ROOT / "tests" / "model" / "fixtures" / "tokenizer_llamacpp.json"))
    args = ap.parse_args()

    import jinja2.sandbox
    import llama_cpp
    from gguf import GGUFReader

    llm = llama_cpp.Llama(model_path=args.model, vocab_only=True, verbose=False)
    cases = []
    for i, text in enumerate(corpus()):
        cases.append({"text": text, "parse_special": True,
                      "ids": llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)})
        if i % 4 == 0 or "<" in text:  # the same text with special tokens read as plain text
            cases.append({"text": text, "parse_special": False,
                          "ids": llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)})

    reader = GGUFReader(args.model)
    template_src = reader.fields["tokenizer.chat_template"].contents()
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(template_src)
    chats = [{"messages": m, "add_generation_prompt": g, "text": template.render(messages=m, add_generation_prompt=g)}
             for m, g in CONVERSATIONS]

    fixture = {"generator": "scripts/make_tokenizer_fixture.py",
               "llama_cpp_python": llama_cpp.__version__,
               "model": Path(args.model).name,
               "cases": cases, "chat": chats}
    # One case per line: reviewable diffs when the corpus or llama.cpp changes.
    lines = []
    for key, value in fixture.items():
        if isinstance(value, list):
            items = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f"{json.dumps(key)}: [\n{items}\n]")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    Path(args.out).write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    print(f"wrote {len(cases)} tokenizer cases and {len(chats)} chat cases to {args.out}")


if __name__ == "__main__":
    main()
