/** The {@code ember} command line (picocli): {@code generate} and, as they land, {@code serve} and {@code bench}. */
package dev.ember.cli;
