/**
 * The top of Ember: {@link dev.ember.app.EmberCli}, the {@code ember} command and the jar's main class, which registers
 * the commands of {@code cli} ({@code generate}), {@code server} ({@code serve}), {@code bench} and {@code report}
 * ({@code compare}, {@code plot}, {@code report}). Nothing imports this package, so no command package has to import
 * another to be reached.
 */
package dev.ember.app;
