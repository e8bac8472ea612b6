package dev.ember.scheduler;

/** Why a generation ended, named as the OpenAI API names it. */
public enum FinishReason {
    /** An end-of-sequence token or a stop string. */
    STOP("stop"),
    /** The token budget ({@code max_tokens}) or the model's context ran out. */
    LENGTH("length");

    private final String apiName;

    FinishReason(String apiName) {
        this.apiName = apiName;
    }

    public String apiName() {
        return apiName;
    }
}
