/**
 * Reading benchmark results back: {@code ember compare} (a Markdown table of each metric and the ratio B/A),
 * {@code ember plot} (PNG and SVG charts with XChart) and {@code ember report} (the standard suite in one command,
 * written up in Markdown with its tables, charts, hardware and commands).
 */
package dev.ember.report;
