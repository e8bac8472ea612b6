package dev.ember.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;

import java.time.Clock;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.Locale;

/**
 * The globals HF adds to every chat template's environment: {@code raise_exception(message)}, with which templates
 * reject conversations they cannot format, and {@code strftime_now(format)}, with which Llama 3 writes today's date.
 * Jinjava calls these as static methods; the clock travels in the render's bindings under {@link #CLOCK}.
 */
final class TemplateFunctions {

    static final String CLOCK = "__ember_clock__";

    private TemplateFunctions() {
    }

    /** Thrown by {@code raise_exception}; {@link ChatTemplate} turns it into an error that names the template's file. */
    static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) {
            super(message, null, false, false);
        }
    }

    public static Object raiseException(Object message) {
        throw new TemplateRaised(String.valueOf(message));
    }

    public static String strftimeNow(String format) {
        Clock clock = (Clock) JinjavaInterpreter.getCurrent().getContext().get(CLOCK);
        return strftime(format, ZonedDateTime.now(clock));
    }

    /** C-locale {@code strftime}, for the directives chat templates use; others pass through as glibc leaves them. */
    static String strftime(String format, ZonedDateTime t) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char directive = format.charAt(++i);
            switch (directive) {
                case 'a' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> out.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'b', 'h' -> out.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> out.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'd' -> out.append(twoDigits(t.getDayOfMonth()));
                case 'e' -> out.append(String.format("%2d", t.getDayOfMonth()));
                case 'j' -> out.append(String.format("%03d", t.getDayOfYear()));
                case 'm' -> out.append(twoDigits(t.getMonthValue()));
                case 'y' -> out.append(twoDigits(t.getYear() % 100));
                case 'Y' -> out.append(t.getYear());
                case 'H' -> out.append(twoDigits(t.getHour()));
                case 'I' -> out.append(twoDigits(t.getHour() % 12 == 0 ? 12 : t.getHour() % 12));
                case 'M' -> out.append(twoDigits(t.getMinute()));
                case 'S' -> out.append(twoDigits(t.getSecond()));
                case 'p' -> out.append(t.getHour() < 12 ? "AM" : "PM");
                case '%' -> out.append('%');
                default -> out.append('%').append(directive);
            }
        }
        return out.toString();
    }

    private static String twoDigits(int value) {
        return value < 10 ? "0" + value : Integer.toString(value);
    }
}
