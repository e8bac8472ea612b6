package dev.ember.tokenizer;

/**
 * transformers' {@code clean_up_tokenization}: the spaces a WordPiece decode leaves before punctuation and English
 * contractions. HF applies it when tokenizer_config.json sets {@code clean_up_tokenization_spaces}, except for BPE
 * models (every Llama, Qwen and Mistral), where transformers 5 skips it because it would delete real spaces.
 */
final class TokenizationSpaces {

    private static final String[][] REPLACEMENTS = {
            {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
            {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };

    private TokenizationSpaces() {
    }

    static String cleanUp(String text) {
        String result = text;
        for (String[] replacement : REPLACEMENTS) {
            result = result.replace(replacement[0], replacement[1]);
        }
        return result;
    }
}
