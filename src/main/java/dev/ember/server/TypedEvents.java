package dev.ember.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * The events of a stream in another API's shape (OpenAI's Responses, Anthropic's Messages): each a JSON object naming
 * its {@code type}, sent as {@code event: TYPE} and {@code data: JSON}; made as a chat chunk is read and sent together
 * once it is, numbered where the API numbers them ({@code sequence_number}).
 */
final class TypedEvents {
    private final Exchange exchange;
    private final ObjectMapper json;
    private final boolean numbered;
    private final List<ObjectNode> pending = new ArrayList<>();
    private int sequence;

    TypedEvents(Exchange exchange, ObjectMapper json, boolean numbered) {
        this.exchange = exchange;
        this.json = json;
        this.numbered = numbered;
    }

    /** A new event of {@code type}, to fill in; sent at the next {@link #flush}. */
    ObjectNode event(String type) {
        ObjectNode event = json.createObjectNode().put("type", type);
        if (numbered) {
            event.put("sequence_number", sequence++);
        }
        pending.add(event);
        return event;
    }

    /** Sends the events made since the last flush. */
    void flush() throws IOException {
        for (ObjectNode event : pending) {
            exchange.sendEvent(event.get("type").asText(), json.writeValueAsBytes(event));
        }
        pending.clear();
    }
}
