# A Docker Space for the dSprites VSA app: serves on 0.0.0.0:7860 as a non-root user (UID 1000).
FROM python:3.11-slim

RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False
WORKDIR /home/user/app

# Torch first and pinned, so that no other requirement pulls a CUDA build.
COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user torch==2.13.0 && \
    pip install --no-cache-dir --user -r requirements.txt

COPY --chown=user . .
EXPOSE 7860
CMD ["python", "app.py"]
