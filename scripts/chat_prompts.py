"""The chat prompts the llama.cpp oracle (scripts/llama_cpp_agreement.py) and the generation benchmark
(bench/model/generate_vs_llama_cpp.py) use, and SmolLM2-Instruct's ChatML rendering of one user message
(with the default system message its template inserts), as `pagedattn generate --chat` renders it."""

PROMPTS = [
    "What is paged attention?",
    "Write a short poem about the sea.",
    "Explain how a hash table works.",
    "Give me three tips for learning to cook.",
    "What is the difference between a list and a tuple in Python?",
    "Describe the water cycle.",
    "Why is the sky blue?",
    "Summarize the plot of Romeo and Juliet.",
    "How do vaccines work?",
    "Write a haiku about autumn leaves.",
    "What are the benefits of regular exercise?",
    "Explain recursion to a ten-year-old.",
    "List five animals that live in the ocean.",
    "How does a bicycle stay upright?",
    "What is the capital of Australia and why?",
    "Give a recipe for pancakes.",
]


def chatml(user):
    return ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
