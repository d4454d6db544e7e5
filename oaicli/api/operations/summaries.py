"""The groups of the operations table and their one-line summaries: all `oaicli --help` reads. Written by
openapi/compile.py (do not edit). A Python module, not JSON, so that listing the groups imports no json."""

INDEX = {'groups': {'admin': {'operations': 119,
                      'summary': 'Organization administration: projects, users, keys, usage, costs (uses '
                                 'OPENAI_ADMIN_KEY).'},
            'assistants': {'deprecated': True,
                           'operations': 5,
                           'summary': 'Build Assistants that can call models and use tools.'},
            'audio': {'operations': 9, 'summary': 'Turn audio into text or text into audio.'},
            'batches': {'operations': 4,
                        'summary': 'Create large batches of API requests to run asynchronously.'},
            'beta': {'operations': 7,
                     'summary': 'Beta variants of the Responses API (sent with the openai-beta header).'},
            'chat': {'operations': 6,
                     'summary': 'Given a list of messages comprising a conversation, the model will return a '
                                'response.'},
            'chatkit': {'operations': 6, 'summary': 'Chatkit: sessions, threads'},
            'completions': {'handwritten': True,
                            'operations': 1,
                            'summary': 'Given a prompt, the model will return one or more predicted '
                                       'completions, and can also return the probabilities of alternative '
                                       'tokens at each position.'},
            'containers': {'operations': 9, 'summary': 'Containers: create, delete, get, list, files'},
            'content-provenance-checks': {'operations': 1, 'summary': 'Content provenance checks: create'},
            'conversations': {'operations': 8, 'summary': 'Manage conversations and conversation items.'},
            'embeddings': {'handwritten': True,
                           'operations': 1,
                           'summary': 'Get a vector representation of a given input that can be easily '
                                      'consumed by machine learning models and algorithms.'},
            'evals': {'operations': 12, 'summary': 'Manage and run evals in the OpenAI platform.'},
            'files': {'handwritten': True,
                      'operations': 5,
                      'summary': 'Files are used to upload documents that can be used with features like '
                                 'Assistants and Fine-tuning.'},
            'fine-tuning': {'operations': 13,
                            'summary': 'Manage fine-tuning jobs to tailor a model to your specific training '
                                       'data.'},
            'images': {'handwritten': True,
                       'operations': 3,
                       'summary': 'Given a prompt and/or an input image, the model will generate a new '
                                  'image.'},
            'models': {'handwritten': True,
                       'operations': 3,
                       'summary': 'List and describe the various models available in the API.'},
            'moderations': {'handwritten': True,
                            'operations': 1,
                            'summary': 'Given text and/or image inputs, classifies if those inputs are '
                                       'potentially harmful.'},
            'realtime': {'operations': 9,
                         'summary': 'Realtime: calls, client-secrets, sessions, transcription-sessions, '
                                    'translations'},
            'responses': {'operations': 7,
                          'summary': 'Responses: cancel, compact, create, delete, get, input-tokens, '
                                     'input-items'},
            'skills': {'operations': 11,
                       'summary': 'Skills: content, create, delete, get, list, update, versions'},
            'threads': {'operations': 18, 'summary': 'Build Assistants that can call models and use tools.'},
            'uploads': {'handwritten': True,
                        'operations': 4,
                        'summary': 'Use Uploads to upload large files in multiple parts.'},
            'vector-stores': {'operations': 16,
                              'summary': 'Vector stores: create, delete, get, list, search, update, '
                                         'file-batches, files'},
            'videos': {'deprecated': True,
                       'operations': 10,
                       'summary': 'Videos: content, create, delete, get, list, characters, edits, '
                                  'extensions, remix'}}}
