package dev.ember;

import com.fasterxml.jackson.databind.JsonNode;

/** Reading the reference files' JSON arrays in tests. */
public final class JsonArrays {
    private JsonArrays() {
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }
}
