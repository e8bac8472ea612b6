package dev.ember.cli;

import dev.ember.Progress;

import java.io.Console;
import java.io.PrintStream;
import java.util.Locale;

/**
 * Progress on stderr. On a terminal, a one-line bar, redrawn at most ten times a second and erased when its work is
 * done. Elsewhere (a pipe, a log
 * file) nothing for work that ends quickly, and for work that runs on, a line every {@value #QUIET_SECONDS} seconds
 * saying how far it is, then one when it is done: a log shows that a long run is alive without filling up.
 *
 * <p>Whether stderr is a terminal: the {@code ember} launcher tells ({@code -Dember.stderr.terminal}), since it passes
 * stderr through a pipe of its own; without it, whether the JVM has an interactive console.
 */
public final class ConsoleProgress implements Progress {
    private static final long REDRAW_NANOS = 100_000_000L;
    static final int QUIET_SECONDS = 10;
    private static final long QUIET_NANOS = QUIET_SECONDS * 1_000_000_000L;
    private final PrintStream out;
    private final boolean terminal;
    private String task = "";
    private long lastDraw;
    private long taskStart;
    private boolean reported;

    public ConsoleProgress(PrintStream out) {
        this(out, isTerminal());
    }

    ConsoleProgress(PrintStream out, boolean terminal) {
        this.out = out;
        this.terminal = terminal;
    }

    /** Whether stderr is a terminal, as the launcher says or, without it, as the JVM's console says. */
    public static boolean isTerminal() {
        String told = System.getProperty("ember.stderr.terminal");
        if (told != null) {
            return Boolean.parseBoolean(told);
        }
        Console console = System.console();
        return console != null && console.isTerminal();
    }

    @Override
    public void update(String task, long done, long total) {
        boolean finished = done >= total;
        boolean newTask = !task.equals(this.task);
        long now = System.nanoTime();
        double fraction = total == 0 ? 1 : (double) done / total;
        if (!terminal) {
            if (newTask) {
                this.task = task;
                taskStart = now;
                lastDraw = now;
                reported = false;
            }
            if (finished) {
                if (reported) {
                    out.printf(Locale.ROOT, "%s: done in %.0f s%n", task, (now - taskStart) / 1e9);
                }
                this.task = "";
            } else if (now - lastDraw >= QUIET_NANOS) {
                out.printf(Locale.ROOT, "%s: %.0f%% after %.0f s%n", task, 100 * fraction, (now - taskStart) / 1e9);
                lastDraw = now;
                reported = true;
            }
            return;
        }
        if (!finished && !newTask && now - lastDraw < REDRAW_NANOS) {
            return;
        }
        this.task = task;
        lastDraw = now;
        int width = 30;
        int filled = (int) Math.round(fraction * width);
        String bar = String.format(Locale.ROOT, "%-24s [%s%s] %5.1f%%", task, "#".repeat(filled), " ".repeat(width - filled),
                100 * fraction);
        if (finished) {
            out.print("\r" + " ".repeat(bar.length()) + "\r");  // done: the bar gives its line back
            this.task = "";
        } else {
            out.print("\r" + bar);
        }
        out.flush();
    }
}
