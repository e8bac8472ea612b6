package dev.ember.scheduler;

/**
 * What one step did to one sequence, as {@link Scheduler#update} reports it.
 *
 * @param token    the token the step sampled and the sequence appended
 * @param text     the text that token released (held-back text too when the sequence finished); "" without a tokenizer
 * @param finished why the sequence ended at this token, or null while it goes on
 */
public record SequenceOutput(Sequence sequence, int token, String text, FinishReason finished) {
}
