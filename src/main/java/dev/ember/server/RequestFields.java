package dev.ember.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * The fields of a JSON request body, read with their types checked: a field of the wrong type is a 400 naming
 * it, never a silent default. An absent field and an explicit {@code null} are treated alike, as OpenAI does.
 */
final class RequestFields {
    private final ObjectNode body;

    RequestFields(JsonNode body) {
        if (!(body instanceof ObjectNode object)) {
            throw ApiException.invalid(null, "the request body must be a JSON object");
        }
        this.body = object;
    }

    boolean has(String name) {
        JsonNode node = body.get(name);
        return node != null && !node.isNull();
    }

    /** The names of the body's fields, in the order sent. */
    Iterator<String> names() {
        return body.fieldNames();
    }

    JsonNode node(String name) {
        return body.get(name);
    }

    double number(String name, double absent) {
        if (!has(name)) {
            return absent;
        }
        JsonNode node = body.get(name);
        if (!node.isNumber()) {
            throw wrongType(name, "a number");
        }
        return node.asDouble();
    }

    /** An integer field; {@code 5.0} is accepted as 5, {@code 5.5} and values outside {@code [min, max]} are not. */
    long integer(String name, long absent, long min, long max) {
        if (!has(name)) {
            return absent;
        }
        JsonNode node = body.get(name);
        if (!node.isNumber() || (!node.isIntegralNumber() && node.asDouble() != Math.rint(node.asDouble()))) {
            throw wrongType(name, "an integer");
        }
        if (!node.canConvertToLong()) {
            throw ApiException.invalid(name, name + " = " + node + " is too large");
        }
        if (node.asLong() < min || node.asLong() > max) {
            throw ApiException.invalid(name, name + " = " + node + " is out of range: it must be between " + min + " and " + max);
        }
        return node.asLong();
    }

    boolean bool(String name, boolean absent) {
        if (!has(name)) {
            return absent;
        }
        JsonNode node = body.get(name);
        if (!node.isBoolean()) {
            throw wrongType(name, "true or false");
        }
        return node.asBoolean();
    }

    String string(String name, String absent) {
        if (!has(name)) {
            return absent;
        }
        JsonNode node = body.get(name);
        if (!node.isTextual()) {
            throw wrongType(name, "a string");
        }
        return node.asText();
    }

    /** A string or an array of strings (OpenAI's {@code stop}); empty when absent. */
    List<String> strings(String name) {
        if (!has(name)) {
            return List.of();
        }
        JsonNode node = body.get(name);
        if (node.isTextual()) {
            return List.of(node.asText());
        }
        if (!node.isArray()) {
            throw wrongType(name, "a string or an array of strings");
        }
        List<String> out = new ArrayList<>();
        for (JsonNode item : node) {
            if (!item.isTextual()) {
                throw wrongType(name, "a string or an array of strings");
            }
            out.add(item.asText());
        }
        return out;
    }

    ApiException wrongType(String name, String expected) {
        return wrongType(name, expected, body.get(name));
    }

    static ApiException wrongType(String name, String expected, JsonNode actual) {
        return ApiException.invalid(name, name + " must be " + expected + ", got " + describe(actual));
    }

    static String describe(JsonNode node) {
        String text = node.toString();
        String shown = text.length() > 40 ? text.substring(0, 40) + "..." : text;
        return node.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + " " + shown;
    }
}
