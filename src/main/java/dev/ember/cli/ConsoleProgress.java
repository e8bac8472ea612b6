package dev.ember.cli;

import dev.ember.Progress;

import java.io.PrintStream;

/**
 * A one-line progress bar on stderr, redrawn at most ten times a second; on a non-terminal it prints
 * only each task's start and end, so logs stay readable.
 */
public final class ConsoleProgress implements Progress {
    private static final long REDRAW_NANOS = 100_000_000L;
    private final PrintStream out;
    private final boolean terminal;
    private String task = "";
    private long lastDraw;

    public ConsoleProgress(PrintStream out) {
        this.out = out;
        this.terminal = System.console() != null;
    }

    @Override
    public void update(String task, long done, long total) {
        boolean finished = done >= total;
        boolean newTask = !task.equals(this.task);
        long now = System.nanoTime();
        if (!terminal) {
            if (newTask || finished) {
                out.printf("%s: %s%n", task, finished ? "done" : "started");
            }
            this.task = finished ? "" : task;
            return;
        }
        if (!finished && !newTask && now - lastDraw < REDRAW_NANOS) {
            return;
        }
        this.task = task;
        lastDraw = now;
        double fraction = total == 0 ? 1 : (double) done / total;
        int width = 30;
        int filled = (int) Math.round(fraction * width);
        out.printf("\r%-24s [%s%s] %5.1f%%", task, "#".repeat(filled), " ".repeat(width - filled), 100 * fraction);
        if (finished) {
            out.println();
            this.task = "";
        }
        out.flush();
    }
}
