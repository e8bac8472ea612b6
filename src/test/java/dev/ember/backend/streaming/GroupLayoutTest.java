package dev.ember.backend.streaming;

import dev.ember.backend.streaming.GroupLayout.Part;
import dev.ember.backend.streaming.GroupLayout.Role;
import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;
import org.junit.jupiter.api.Test;

import java.util.EnumSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** A group's parts: each role in the kind of group it belongs to, aligned, in order, and only where the model has it. */
class GroupLayoutTest {
    private static ModelConfig config(Architecture architecture, Biases biases) {
        return new ModelConfig(architecture, 64, 96, 2, 4, 2, 16, 300, 512, 1e-5, 10000, new RopeScaling.None(), false,
                biases, 0, 1, List.of(2), DType.BF16);
    }

    /** Llama with attention_bias and mlp_bias has every bias, Qwen3 with attention_bias the q/k norms: every role. */
    @Test
    void everyRoleLiesInItsKindOfGroupOnceAlignedAndInOrder() {
        Set<Role> seen = EnumSet.noneOf(Role.class);
        for (Architecture architecture : new Architecture[] {Architecture.LLAMA, Architecture.QWEN3}) {
            GroupLayout layout = GroupLayout.of(config(architecture, architecture.biases(true, true)), DType.BF16);
            for (WeightGroup.Kind kind : WeightGroup.Kind.values()) {
                long end = 0;
                for (Part part : layout.parts(kind)) {
                    assertEquals(kind, part.role().kind, part.role() + " in a " + kind + " group");
                    assertEquals(0, part.offset() % GroupLayout.ALIGNMENT, part.role() + " aligned");
                    assertTrue(part.offset() >= end, part.role() + " after the part before it");
                    assertTrue(seen.add(part.role()) || architecture == Architecture.QWEN3, "once: " + part.role());
                    assertSame(part, layout.part(part.role()));
                    end = part.offset() + part.bytes();
                }
                assertEquals(end, layout.bytes(kind));
            }
        }
        assertEquals(EnumSet.allOf(Role.class), seen);
    }

    @Test
    void rolesTheArchitectureLacksAreAbsent() {
        GroupLayout layout = GroupLayout.of(config(Architecture.LLAMA, Biases.NONE), DType.F32);
        Set<Role> absent = EnumSet.of(Role.QKV_BIAS, Role.O_BIAS, Role.GATE_UP_BIAS, Role.DOWN_BIAS, Role.Q_NORM, Role.K_NORM);
        for (Role role : Role.values()) {
            assertEquals(!absent.contains(role), layout.find(role).isPresent(), role.name());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> layout.part(Role.O_BIAS));
        assertTrue(e.getMessage().contains("O_BIAS"), e.getMessage());
        assertEquals(DType.F32, layout.part(Role.QKV).type(), "matrices in the layout's storage type");
        assertEquals(DType.F32, layout.part(Role.ATTN_NORM).type(), "norms in fp32");
    }
}
