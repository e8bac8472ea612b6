package dev.ember.bench;

import dev.ember.model.ModelConfig;

/**
 * What one token costs a model of a given shape: the weights a step reads, the matrix-product FLOPs per token,
 * and the KV-cache bytes each cached token holds. The figures a benchmark's floor is made of.
 *
 * @param weightBytes     every weight matrix a step reads once (the layers' projections and the LM head; the
 *                        embedding table is only looked up by row, so an untied one is not counted)
 * @param flopsPerToken   2 x (layer projections + LM head): the matrix-product FLOPs of one token through the model
 * @param kvBytesPerToken K and V of one token over all layers
 * @param attentionWidth  query width times layers: attention costs 4 x this FLOPs per cached token a query reads
 * @param slidingWindow   the most cached tokens a query reads, or 0 for all of them
 */
public record ModelCost(long weightBytes, long flopsPerToken, long kvBytesPerToken, long attentionWidth, int slidingWindow) {

    public static ModelCost of(ModelConfig c, int weightElementBytes, int kvElementBytes) {
        long params = c.numLayers() * c.layerMatrixParameters() + (long) c.hiddenSize() * c.vocabSize();
        return new ModelCost(params * weightElementBytes, 2 * params, 2L * c.numLayers() * c.kvDim() * kvElementBytes,
                (long) c.qDim() * c.numLayers(), c.slidingWindow());
    }

    /** The cached tokens a query at a context of {@code context} tokens reads. */
    long tokensRead(long context) {
        return slidingWindow > 0 ? Math.min(context, slidingWindow) : context;
    }
}
