package dev.ember.tokenizer;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELException;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * The Python {@code str} methods HF chat templates call ({@code content.strip('\n')},
 * {@code content.split('</think>')[-1]}, {@code content.startswith('<tool_response>')}, ...), and Python slices
 * with a step (reached through {@link JinjaDialect}'s {@code __slice__}), for Jinjava, which otherwise only
 * offers Java's methods. Semantics follow CPython's: whitespace is what {@code str.isspace} accepts, indices
 * count code points.
 */
final class PythonMethods extends ELResolver {
    private static final Pattern INTEGER = Pattern.compile("-?\\d{1,18}");

    static final String SLICE = "__slice__";

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] paramTypes, Object[] params) {
        if (base == null || !(method instanceof String name)) {
            return null;
        }
        Object[] args = params == null ? new Object[0] : params;
        Object result;
        if (base instanceof String s) {
            result = stringMethod(s, name, args);
        } else if (base instanceof List<?> list && name.equals(SLICE)) {
            result = slice(list, args);
        } else {
            return null;
        }
        if (result != NOT_HANDLED) {
            context.setPropertyResolved(true);
            return result;
        }
        return null;
    }

    private static final Object NOT_HANDLED = new Object();

    private static Object stringMethod(String s, String name, Object[] args) {
        return switch (name) {
            case "strip" -> strip(s, charsArgument(args), true, true);
            case "lstrip" -> strip(s, charsArgument(args), true, false);
            case "rstrip" -> strip(s, charsArgument(args), false, true);
            case "split" -> split(s, args.length > 0 ? (String) args[0] : null, args.length > 1 ? toInt(args[1]) : -1);
            case "startswith" -> affixMatches(s, args, true);
            case "endswith" -> affixMatches(s, args, false);
            case "upper" -> s.toUpperCase(Locale.ROOT);
            case "lower" -> s.toLowerCase(Locale.ROOT);
            case "title" -> title(s);
            case "capitalize" -> capitalize(s);
            case "replace" -> replace(s, (String) args[0], (String) args[1], args.length > 2 ? toInt(args[2]) : -1);
            case "join" -> join(s, args[0]);
            case SLICE -> sliceString(s, args);
            default -> NOT_HANDLED;
        };
    }

    private static String charsArgument(Object[] args) {
        return args.length == 0 || args[0] == null ? null : (String) args[0];
    }

    /** CPython's {@code str.isspace} for one code point. */
    static boolean isPythonSpace(int cp) {
        return Character.isWhitespace(cp) || Character.isSpaceChar(cp) || cp == 0x85;
    }

    /** {@code str.strip(chars)} (and its one-sided forms): {@code chars} null strips what {@code str.isspace} accepts. */
    static String strip(String s, String chars, boolean left, boolean right) {
        int start = 0;
        int end = s.length();
        while (left && start < end) {
            int cp = s.codePointAt(start);
            if (!stripped(cp, chars)) {
                break;
            }
            start += Character.charCount(cp);
        }
        while (right && end > start) {
            int cp = s.codePointBefore(end);
            if (!stripped(cp, chars)) {
                break;
            }
            end -= Character.charCount(cp);
        }
        return s.substring(start, end);
    }

    private static boolean stripped(int cp, String chars) {
        return chars == null ? isPythonSpace(cp) : chars.indexOf(cp) >= 0;
    }

    private static List<String> split(String s, String separator, int maxSplit) {
        List<String> parts = new ArrayList<>();
        if (separator == null) {
            int i = 0;
            while (true) {
                while (i < s.length() && isPythonSpace(s.codePointAt(i))) {
                    i += Character.charCount(s.codePointAt(i));
                }
                if (i >= s.length()) {
                    return parts;
                }
                if (maxSplit >= 0 && parts.size() == maxSplit) {
                    parts.add(s.substring(i)); // CPython keeps the remainder's trailing whitespace
                    return parts;
                }
                int start = i;
                while (i < s.length() && !isPythonSpace(s.codePointAt(i))) {
                    i += Character.charCount(s.codePointAt(i));
                }
                parts.add(s.substring(start, i));
            }
        }
        if (separator.isEmpty()) {
            throw new ELException("empty separator");
        }
        int start = 0;
        int at;
        while ((maxSplit < 0 || parts.size() < maxSplit) && (at = s.indexOf(separator, start)) >= 0) {
            parts.add(s.substring(start, at));
            start = at + separator.length();
        }
        parts.add(s.substring(start));
        return parts;
    }

    /** {@code startswith}/{@code endswith}: the argument may be one string or a tuple (list) of them. */
    private static boolean affixMatches(String s, Object[] args, boolean prefix) {
        Collection<?> candidates = args[0] instanceof Collection<?> c ? c : List.of(args[0]);
        for (Object candidate : candidates) {
            String affix = (String) candidate;
            if (prefix ? s.startsWith(affix) : s.endsWith(affix)) {
                return true;
            }
        }
        return false;
    }

    private static String title(String s) {
        StringBuilder out = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            boolean cased = Character.isUpperCase(cp) || Character.isLowerCase(cp) || Character.isTitleCase(cp);
            out.appendCodePoint(previousCased ? Character.toLowerCase(cp) : Character.toTitleCase(cp));
            previousCased = cased;
            i += Character.charCount(cp);
        }
        return out.toString();
    }

    private static String capitalize(String s) {
        if (s.isEmpty()) {
            return s;
        }
        int first = s.codePointAt(0);
        return new StringBuilder().appendCodePoint(Character.toTitleCase(first))
                .append(s.substring(Character.charCount(first)).toLowerCase(Locale.ROOT)).toString();
    }

    private static String replace(String s, String old, String replacement, int count) {
        if (count < 0) {
            return s.replace(old, replacement);
        }
        StringBuilder out = new StringBuilder();
        int start = 0;
        for (int done = 0; done < count; done++) {
            int at = s.indexOf(old, start);
            if (at < 0) {
                break;
            }
            out.append(s, start, at).append(replacement);
            start = at + old.length();
            if (old.isEmpty()) {
                if (start >= s.length()) {
                    return out.append(s.substring(start)).toString();
                }
                int next = s.offsetByCodePoints(start, 1);
                out.append(s, start, next);
                start = next;
            }
        }
        return out.append(s.substring(start)).toString();
    }

    private static String join(String separator, Object items) {
        List<String> parts = new ArrayList<>();
        for (Object item : (Iterable<?>) items) {
            parts.add((String) item);
        }
        return String.join(separator, parts);
    }

    private static String sliceString(String s, Object[] args) {
        int[] codePoints = s.codePoints().toArray();
        StringBuilder out = new StringBuilder();
        for (int index : sliceIndices(codePoints.length, args)) {
            out.appendCodePoint(codePoints[index]);
        }
        return out.toString();
    }

    private static List<Object> slice(List<?> list, Object[] args) {
        List<Object> out = new ArrayList<>();
        for (int index : sliceIndices(list.size(), args)) {
            out.add(list.get(index));
        }
        return out;
    }

    /** The indices {@code seq[start:stop:step]} visits in a sequence of {@code length}, as CPython's slice.indices. */
    static int[] sliceIndices(int length, Object[] args) {
        long step = args.length > 2 && args[2] != null ? toInt(args[2]) : 1;
        if (step == 0) {
            throw new ELException("slice step cannot be zero");
        }
        long lower = step < 0 ? -1 : 0;
        long upper = step < 0 ? length - 1 : length;
        long start = args.length > 0 && args[0] != null ? clampIndex(toInt(args[0]), length, lower, upper) : (step < 0 ? upper : lower);
        long stop = args.length > 1 && args[1] != null ? clampIndex(toInt(args[1]), length, lower, upper) : (step < 0 ? lower : upper);
        long count = step > 0 ? Math.max(0, (stop - start + step - 1) / step) : Math.max(0, (start - stop - step - 1) / -step);
        int[] indices = new int[(int) count];
        for (int k = 0; k < count; k++) {
            indices[k] = (int) (start + k * step);
        }
        return indices;
    }

    private static long clampIndex(long index, int length, long lower, long upper) {
        long i = index < 0 ? index + length : index;
        return Math.min(Math.max(i, lower), upper);
    }

    private static int toInt(Object value) {
        if (value instanceof Number n) {
            return n.intValue();
        }
        throw new ELException("expected an integer, got " + value);
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        // A string indexed by an integer, 'abc'[0] or s[-1]: the code point there, as Python indexes a str; out of range
        // (Python's IndexError, which Jinja2 renders as undefined) it resolves nothing here and prints nothing. Jinjava
        // hands a string's index over as a string, so s['0'] (undefined in Jinja2) reads the same; no template writes it.
        Long integer = property instanceof Number n && !(property instanceof Double || property instanceof Float) ? n.longValue()
                : property instanceof String p && INTEGER.matcher(p).matches() ? Long.valueOf(p) : null;
        if (base instanceof String text && integer != null) {
            long index = integer;
            int length = text.codePointCount(0, text.length());
            if (index < 0) {
                index += length;
            }
            if (index >= 0 && index < length) {
                context.setPropertyResolved(true);
                return Character.toString(text.codePointAt(text.offsetByCodePoints(0, (int) index)));
            }
        }
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
        // Not a property resolver: assignments go to the resolvers after this one.
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return false;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
