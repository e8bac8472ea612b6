package dev.ember.backend;

import dev.ember.model.Architecture;
import dev.ember.model.Biases;
import dev.ember.model.DType;
import dev.ember.model.ModelConfig;
import dev.ember.model.RopeScaling;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * Model shapes drawn at random from a fixed seed, for the backends' tests against their references: each family with
 * the biases, rotary scalings, windows, tied heads and storage types its configs allow, at sizes no test wrote down
 * (hidden sizes of 4 to 96, head sizes of 2 to 40, one to three KV heads shared by one to three query heads each).
 */
public final class RandomShapes {
    /** One drawn shape: its config, the type its weights are stored in, and a name that says what was drawn. */
    public record Shape(String name, ModelConfig config, DType dtype) {
        @Override
        public String toString() {
            return name;
        }
    }

    private RandomShapes() {
    }

    /** {@code count} shapes, the same ones every run. */
    public static Stream<Shape> draw(int count) {
        SplittableRandom random = new SplittableRandom(20261205);
        Architecture[] families = Architecture.values();
        RopeScaling[] scalings = {new RopeScaling.None(), new RopeScaling.Linear(2), new RopeScaling.Llama3(8, 1, 4, 32),
                new RopeScaling.Yarn(4, 128, 32, 1, true, RopeScaling.Yarn.magnitudeScale(4, 1))};
        DType[] types = DType.values();
        return Stream.generate(() -> {
            Architecture arch = families[random.nextInt(families.length)];
            int kvHeads = 1 + random.nextInt(3), heads = kvHeads * (1 + random.nextInt(3)), headDim = 2 * (1 + random.nextInt(20));
            int hidden = 4 + random.nextInt(93);
            int window = arch == Architecture.LLAMA || random.nextBoolean() ? 0 : 3 + random.nextInt(8);
            Biases biases = arch.biases(random.nextBoolean(), random.nextBoolean());
            ModelConfig config = new ModelConfig(arch, hidden, 8 + random.nextInt(120), 1 + random.nextInt(3), heads, kvHeads,
                    headDim, 50 + random.nextInt(300), 512, 1e-5, 10000, scalings[random.nextInt(scalings.length)],
                    random.nextBoolean(), biases, window, 1, List.of(2), DType.BF16);
            DType dtype = types[random.nextInt(types.length)];
            String name = String.format("%s %s hidden %d, %d/%d heads of %d, %s, window %d, %s", arch, dtype, hidden, heads,
                    kvHeads, headDim, biases, window, config.ropeScaling());
            return new Shape(name, config, dtype);
        }).limit(count);
    }
}
