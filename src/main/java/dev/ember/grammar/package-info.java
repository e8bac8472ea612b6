/**
 * Structured output: grammars an output must match, checked token by token. {@link dev.ember.grammar.JsonShape}s are
 * compiled from a JSON schema ({@link dev.ember.grammar.JsonSchemas}) or stand for any JSON object; regular expressions
 * and GBNF grammars ({@link dev.ember.grammar.Gbnf}) hold an output too; a
 * {@link dev.ember.grammar.TokenGrammar} runs them as a pushdown recognizer over bytes
 * ({@link dev.ember.grammar.JsonMachine}) and walks the vocabulary as a trie of token bytes
 * ({@link dev.ember.grammar.VocabularyTrie}) to find the tokens that may come next, the sampler's mask
 * ({@link dev.ember.sampling.OutputGrammar}).
 */
package dev.ember.grammar;
