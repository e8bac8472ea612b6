package dev.ember.tokenizer;

import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.ZonedDateTime;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The pieces that make Jinjava render HF templates as Jinja2 does, each against what CPython / Jinja2 give
 * (values worked out from the Python documentation's rules, and for slices from a direct reimplementation of them).
 */
class JinjaCompatibilityTest {

    private static String render(String template) {
        ChatTemplate t = new ChatTemplate(template, "test.jinja",
                new ChatTemplate.TokenVariables("<s>", "</s>", null, null), Clock.systemUTC());
        return t.render(List.of(new ChatMessage("user", "Hi")), true, List.of(), Map.of());
    }

    @Test
    void translatesStepSlicesAndKeywordArgumentsAndNothingElse() {
        assertEquals("{{ a.__slice__(none, none, -1) }}", JinjaDialect.translate("{{ a[::-1] }}").template());
        assertEquals("{% for m in ms.__slice__(1, none, 2)[0] %}", JinjaDialect.translate("{% for m in ms[1::2][0] %}").template());
        assertEquals("{% set ns = namespace(i=(x|length - 1), ok=(true)) %}",
                JinjaDialect.translate("{% set ns = namespace(i=x|length - 1, ok=true) %}").template());
        for (String unchanged : List.of("text a[::-1] f(x=1 - 2) {{ y[1:] }}", "{{ 'a[::-1] f(n=a - 1)' }}",
                "{# a[::-1] #}{% if (a == b) or (c != d) or (e >= f) %}", "{% raw %}{{ a[::-1] }}{% endraw %}",
                "{{ {'k': v[0]} }}", "{% macro m(a, b=1) %}{% endmacro %}")) {
            assertEquals(unchanged, JinjaDialect.translate(unchanged).template());
        }
    }

    @Test
    void listsTheFiltersAndTestsOutsideStrings() {
        JinjaDialect.Translation t = JinjaDialect.translate(
                "{{ x | tojson(indent=2) }}{% if y is not none and z is defined %}{{ 'a|fake is fake' ~ w|trim|upper }}{% endif %}");
        assertEquals(Set.of("tojson", "trim", "upper"), t.filters());
        assertEquals(Set.of("none", "defined"), t.tests());
    }

    @Test
    void aStringPrintsItsControlCharactersAsTheyAreAsJinja2Does() {
        // Jinja2 prints str(value): an ANSI colour code or a NUL in a tool's output reaches the prompt as the character,
        // not as the JSON escape \u001B; tojson still escapes them, as Python's json.dumps does.
        ChatTemplate t = new ChatTemplate("{{ messages[0].content }}|{{ messages[0]['content'] ~ '!' }}|{{ [1, 2] }}|"
                + "{{ messages[0].content|tojson }}", "test.jinja", new ChatTemplate.TokenVariables("<s>", "</s>", null, null),
                Clock.systemUTC());
        String content = "red \u001b[31mx\u001b[0m\u0000\tend\\";
        assertEquals(content + "|" + content + "!|[1, 2]|\"red \\u001b[31mx\\u001b[0m\\u0000\\tend\\\\\"",
                t.render(List.of(new ChatMessage("tool", content)), false, List.of(), Map.of()));
    }

    @Test
    void aStringIndexedByAnIntegerGivesTheCodePointThereAsPythonDoes() {
        assertEquals("a|c|b|\uD83D\uDE00|x|", render("{{ 'abc'[0] }}|{{ 'abc'[-1] }}|{% set s = 'abc' %}{{ s[1] }}"
                + "|{{ '\uD83D\uDE00x'[0] }}|{{ '\uD83D\uDE00x'[1] }}|{{ 'abc'[7] }}"));
    }

    @Test
    void aBlockTagWithAPlusKeepsTheWhitespaceBeforeItAsLstripBlocksLeavesIt() {
        // Jinja2 with lstrip_blocks (as HF renders): "a\n  {% if %}" loses the two spaces, "a\n  {%+ if %}" keeps them.
        assertEquals("a\nx|b\n  y|c  z", render("a\n  {% if true %}x{% endif %}|b\n  {%+ if true %}y{% endif %}"
                + "|c  {%+ if true %}z{% endif %}"));
    }

    @Test
    void stringMethodsBehaveAsPythons() {
        assertEquals("a b|hi|\n\nhi|hi\n\n|4|c|a|b|cd|b  c  |True|False|Hello World|Hello world|XbXb|Xbab|a-b-c",
                render("{{ '  a b  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '\n\nhi'.rstrip('i') }}i"
                        + "|{{ 'hi\n\n'.lstrip('\n') }}|{{ 'a,b,,c'.split(',')|length }}|{{ 'a,b,,c'.split(',')[-1] }}"
                        + "|{{ ' a\t\n b '.split()|join('|') }}|{{ 'ab</think>cd'.split('</think>')[-1] }}"
                        + "|{{ ' a b  c  '.split(none, 1)[1] }}"
                        + "|{{ 'True' if 'abc'.startswith(('x', 'a')) else 'False' }}|{{ 'True' if 'abc'.endswith('b') else 'False' }}"
                        + "|{{ 'hello wORLD'.title() }}|{{ 'hello WORLD'.capitalize() }}|{{ 'abab'.replace('a', 'X') }}"
                        + "|{{ 'abab'.replace('a', 'X', 1) }}|{{ '-'.join(['a', 'b', 'c']) }}"));
    }

    /** Jinja2's type tests: a string is iterable and a sequence, and so is a dict; a number is neither. */
    @Test
    void typeTestsFollowPython() {
        assertEquals("TTTT|TT|FF", render("{% for v in ['s', [1], {'a': 1}, (1, 2)] %}{{ 'T' if v is iterable else 'F' }}{% endfor %}"
                + "|{{ 'T' if 's' is sequence else 'F' }}{{ 'T' if {'a': 1} is sequence else 'F' }}"
                + "|{{ 'T' if 5 is iterable else 'F' }}{{ 'T' if none is sequence else 'F' }}"));
    }

    @Test
    void whitespaceIsWhatPythonCallsWhitespace() {
        assertEquals("x", render("{{ '\u00a0\u2003x\u3000\u0085'.strip() }}"));
    }

    /** Jinja2's trim is str.strip(chars): Unicode spaces go too, and chars is honoured. */
    @Test
    void trimIsPythonsStrip() {
        assertEquals("x|y|z", render("{{ '\u3000\u00a0x\u2028'|trim }}|{{ '\u0085y\u2003'|trim }}|{{ '--z--'|trim('-') }}"));
    }

    /** HF's tojson takes (ensure_ascii, indent, separators, sort_keys), positionally or by name. */
    @Test
    void tojsonTakesHfsArguments() {
        assertEquals("{\"a\":1,\"b\":[1,2]}|\"\\u00e9\"|[\n 1, \n {\n  \"k\" = 2\n }\n]|{\"a\": 2, \"b\": 1}",
                render("{{ {'a': 1, 'b': [1, 2]}|tojson(separators=(',', ':')) }}|{{ '\u00e9'|tojson(true) }}"
                        + "|{{ [1, {'k': 2}]|tojson(indent=1, separators=(', ', ' = ')) }}|{{ {'b': 1, 'a': 2}|tojson(false, none, none, true) }}"));
    }

    /** Jinja2 reads every line break of the source as \n, so trim_blocks eats a \r\n after a tag too. */
    @Test
    void windowsLineBreaksInTheSourceAreNewlines() {
        assertEquals("a\nbc", render("a\r\nb{% if true %}\r\nc{% endif %}\r\n"));
    }

    /** Python's slice semantics, reimplemented straight from the language reference, on random bounds. */
    @Test
    void slicesWithAStepMatchPythonsRules() {
        SplittableRandom random = new SplittableRandom(42);
        for (int trial = 0; trial < 2000; trial++) {
            int length = random.nextInt(8);
            Integer start = random.nextInt(4) == 0 ? null : random.nextInt(-10, 11);
            Integer stop = random.nextInt(4) == 0 ? null : random.nextInt(-10, 11);
            int step = random.nextBoolean() ? random.nextInt(1, 4) : -random.nextInt(1, 4);
            int[] expected = pythonSlice(length, start, stop, step);
            int[] actual = PythonMethods.sliceIndices(length, new Object[]{start == null ? null : (long) start,
                    stop == null ? null : (long) stop, (long) step});
            assertArrayEquals(expected, actual, () -> "len " + length + " [" + start + ":" + stop + ":" + step + "]");
        }
        assertEquals("5,4,3,2,1|1,3,5|4,3,2|olleh|4,3,2,1|[2, 3]", render("{{ [1,2,3,4,5][::-1]|join(',') }}|{{ [1,2,3,4,5][::2]|join(',') }}"
                + "|{{ [1,2,3,4,5][3:0:-1]|join(',') }}|{{ 'hello'[::-1] }}|{{ [1,2,3,4,5][-2::-1]|join(',') }}|{{ [1,2,3][1:] }}"));
    }

    /** The reference's definition: start and stop default to the ends, negatives count from the end, then clamp. */
    private static int[] pythonSlice(int length, Integer start, Integer stop, int step) {
        int first;
        int last;
        if (step > 0) {
            first = start == null ? 0 : Math.clamp(start < 0 ? start + length : start, 0, length);
            last = stop == null ? length : Math.clamp(stop < 0 ? stop + length : stop, 0, length);
            return IntStream.iterate(first, i -> i < last, i -> i + step).toArray();
        }
        first = start == null ? length - 1 : Math.clamp(start < 0 ? start + length : start, -1, length - 1);
        last = stop == null ? -1 : Math.clamp(stop < 0 ? stop + length : stop, -1, length - 1);
        return IntStream.iterate(first, i -> i > last, i -> i + step).toArray();
    }

    @Test
    void tojsonIsPythonsJsonDumps() {
        assertEquals("{\"b\": [1, 2.5, \"é\\\"\\n\"], \"a\": null, \"c\": true}",
                render("{{ {'b': [1, 2.5, 'é\"\\n'], 'a': none, 'c': true} | tojson }}"));
        assertEquals("{\n  \"a\": [\n    1,\n    {}\n  ]\n}", render("{{ {'a': [1, {}]} | tojson(indent=2) }}"));
        assertEquals("\"\\u00e9\\ud83e\\udd99\"", PythonJson.dumps("é🦙", true, -1, false));
        assertEquals("{\"a\": 1, \"b\": 2}", PythonJson.dumps(Map.of("b", 2L, "a", 1L), false, -1, true));
        // What CPython's repr() prints for each.
        Map<Double, String> repr = Map.of(1e16, "1e+16", 1e15, "1000000000000000.0", 1e-5, "1e-05", 0.0001, "0.0001",
                -2.5e-7, "-2.5e-07", 123456.789, "123456.789", 1.0 / 3, "0.3333333333333333", -0.0, "-0.0", 2.0, "2.0");
        repr.forEach((value, expected) -> assertEquals(expected, PythonJson.floatRepr(value)));
    }

    /**
     * Jinja2 reads {@code not} below tests and comparisons: {@code not x is defined} is {@code not (x is defined)},
     * {@code not a == b} is {@code not (a == b)}; what it negates ends at {@code and}, {@code or}, {@code if} or
     * {@code else}. The {@code not} of {@code is not} and {@code not in} is the operator's.
     */
    @Test
    void notNegatesWhatFollowsItAsInJinja2() {
        ChatTemplate.TokenVariables tokens = new ChatTemplate.TokenVariables("<s>", "</s>", null, null);
        Map<String, Object> variables = Map.of("x", Map.of("id", "abcdefghi"), "a", 1L, "b", 2L, "none_value", "", "items", List.of(1L));
        String template = "{% if not x.id is defined %}1{% endif %}{% if not x.nope is defined %}2{% endif %}"
                + "{% if not a == b %}3{% endif %}{% if not a == 1 %}4{% endif %}"
                + "{% if not x.id is defined or x.id|length < 9 %}5{% endif %}{% if not none_value and a %}6{% endif %}"
                + "{{ 'T' if not a > b else 'F' }}{% if x is not none and 3 not in items %}7{% endif %}"
                + "{% if not not a %}8{% endif %}{%- if not x.nope is defined -%}9{%- endif -%}"
                + "{% for v in [1, 2, 3] if not v == 2 %}{{ v }}{% endfor %}";
        String rendered = new ChatTemplate(template, "test.jinja", tokens, Clock.systemUTC())
                .render(List.of(new ChatMessage("user", "Hi")), true, List.of(), variables);
        assertEquals("236T78913", rendered);
        assertEquals("{% if not (x is defined) or y %}{{ (not (a == b)) }}{% if x is not none and not (y not in z) %}",
                JinjaDialect.translate("{% if not x is defined or y %}{{ (not a == b) }}{% if x is not none and not y not in z %}").template());
        assertEquals("{{ a.nothing }}{{ not_a }}", JinjaDialect.translate("{{ a.nothing }}{{ not_a }}").template());
    }

    /** A loop's filter skips items before the loop counts them, so loop.last is the last item kept. */
    @Test
    void aLoopsFilterSkipsItemsBeforeTheyAreCounted() {
        assertEquals("1:1,3:2.|a,b.|", render("{% for v in [1, 2, 3] if v != 2 %}{{ v }}:{{ loop.index }}{{ '.' if loop.last else ',' }}{% endfor %}"
                + "|{% for k, v in {'a': 1, 'return': 2, 'b': 3}.items() if k != 'return' %}{{ k }}{{ '.' if loop.last else ',' }}{% endfor %}"
                + "|{%- for v in [1] if v > 1 -%}{{ v }}{%- endfor %}"));
    }

    /** String literals mean what Python makes of their escapes; Mistral's templates continue strings over lines. */
    @Test
    void stringLiteralsReadPythonsEscapes() {
        assertEquals("aAb|a\u00e9b|ab|aAb|a\\qb|a\\b|a'b|a\"b|a\nb|a\tb",
                render("{{ 'a\\x41b' }}|{{ 'a\\u00e9b' }}|{{ 'a\\\nb' }}|{{ 'a\\101b' }}|{{ 'a\\qb' }}|{{ 'a\\\\b' }}"
                        + "|{{ 'a\\'b' }}|{{ \"a\\\"b\" }}|{{ 'a\\nb' }}|{{ 'a\\tb' }}"));
    }

    @Test
    void strftimeWritesTheCLocale() {
        ZonedDateTime t = ZonedDateTime.parse("2024-07-05T09:03:07Z");
        assertEquals("05 Jul 2024", TemplateFunctions.strftime("%d %b %Y", t));
        assertEquals("Friday, July  5 (187) 09:03:07 AM 24 %q 100%", TemplateFunctions.strftime("%A, %B %e (%j) %H:%M:%S %p %y %q 100%%", t));
        assertEquals("12 PM", TemplateFunctions.strftime("%I %p", ZonedDateTime.parse("2024-07-05T12:00:00Z")));
        assertEquals("Fri 07", TemplateFunctions.strftime("%a %m", t));
    }
}
